#!/bin/bash
# The node image's entrypoint: kind's own, after one fix-up for machines where Docker
# cannot grant --privileged (see e2e/kind/docker-shim/docker). There Docker mounts the
# cgroup v1 hierarchies read-only, and kind's entrypoint and the kubelet must create
# cgroups in them; a bind remount makes this container's own subtree writable. And
# without CAP_SYS_RESOURCE runc cannot lower a pod's oom_score_adj below containerd's
# ("failed to update /proc/self/oom_score_adj: Permission denied"), so containerd is told
# to keep it at or above its own, as kind does for rootless nodes.
set -e
for m in $(awk '$2 ~ "^/sys/fs/cgroup/" && $3 == "cgroup" && $4 ~ /(^|,)ro(,|$)/ {print $2}' /proc/mounts); do
  mount -o remount,bind,rw "$m"
done
cap_eff=$((16#$(awk '/^CapEff:/ {print $2}' /proc/self/status)))
cap_sys_resource=$((1 << 24))
if (((cap_eff & cap_sys_resource) == 0)); then
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
fi
exec /usr/local/bin/entrypoint "$@"
