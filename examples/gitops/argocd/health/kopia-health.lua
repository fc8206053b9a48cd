-- Argo CD health of a kopia.io object, from the operator's kstatus conditions (Ready, plus
-- Reconciling and Stalled, which are True only when something is abnormal) and, for Backup and
-- Restore, the phase. Argo CD runs this with the object as the global `obj` (Lua 5.1).
-- The order decides: an unobserved edit, then Stalled, then a failed phase, then Reconciling,
-- then spec.suspend, then Ready. Not Ready while neither Stalled nor Reconciling is Progressing
-- (the operator marks what needs a person Stalled; anything else is waiting for something that
-- comes by itself, such as the claim of a BackupConfig), except for a finished Backup or Restore,
-- which will not change any more: that is Degraded (a Backup with files it could not read).
local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function health(status, message, fallback)
  if message == nil or message == "" then
    message = fallback
  end
  return { status = status, message = message }
end

-- kind: { successPhase, failedPhase } for kinds with a phase, { suspendable = true } for those with spec.suspend.
local function kopiaHealth(kind)
  local status = obj.status
  if status == nil then
    return health("Progressing", nil, "Waiting for the operator to report status")
  end
  local generation = obj.metadata.generation
  if generation ~= nil and status.observedGeneration ~= generation then
    return health("Progressing", nil, "Waiting for the operator to observe generation " .. generation)
  end
  local ready = condition("Ready")
  local readyMessage = ready and ready.message
  local stalled = condition("Stalled")
  if isTrue(stalled) then
    return health("Degraded", stalled.message, readyMessage or "Stalled")
  end
  if kind.failedPhase ~= nil and status.phase == kind.failedPhase then
    return health("Degraded", readyMessage, "phase " .. kind.failedPhase)
  end
  local reconciling = condition("Reconciling")
  if isTrue(reconciling) then
    return health("Progressing", reconciling.message, "Reconciling")
  end
  if kind.suspendable and obj.spec ~= nil and obj.spec.suspend == true then
    return health("Suspended", readyMessage, "spec.suspend is true")
  end
  if kind.successPhase ~= nil and status.phase ~= kind.successPhase then
    return health("Progressing", readyMessage, "phase " .. tostring(status.phase))
  end
  if isTrue(ready) then
    return health("Healthy", readyMessage, "Ready")
  end
  if kind.successPhase ~= nil and ready ~= nil and ready.status == "False" then
    return health("Degraded", readyMessage, "phase " .. kind.successPhase .. " but not Ready")
  end
  return health("Progressing", readyMessage, "Waiting for the Ready condition")
end
