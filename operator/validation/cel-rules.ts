// Evaluates the schemas' x-kubernetes-validations CEL rules offline, so the lint command
// and the operator reject the same objects the API server does. Transition rules (those
// that read oldSelf) need the previous object and are left to the API server.
import { parse, type ParseResult } from '@marcbachmann/cel-js';

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

const compiled = new Map<string, ParseResult | null>();

/** Kubernetes escapes CEL keywords used as field names (__namespace__); the JS engine takes them plain. */
function toEngineSyntax(rule: string): string {
  return rule.replace(/__([a-z]+)__/g, '$1');
}

export function isTransitionRule(rule: CelRule): boolean {
  return /\boldSelf\b/.test(rule.rule);
}

function compile(rule: string): ParseResult | null {
  if (!compiled.has(rule)) compiled.set(rule, isTransitionRule({ rule }) ? null : parse(toEngineSyntax(rule)));
  return compiled.get(rule) ?? null;
}

/** The rules that fail for self. An evaluation error counts as a failure, as in the API server. */
export function failingRules(rules: CelRule[], self: unknown): CelRule[] {
  return rules.filter((r) => {
    const program = compile(r.rule);
    if (!program) return false;
    try {
      return program({ self }) !== true;
    } catch {
      return true;
    }
  });
}
