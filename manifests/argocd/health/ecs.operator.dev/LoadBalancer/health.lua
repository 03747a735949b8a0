-- Argo CD health of an ecs.operator.dev LoadBalancer (a target group: the tasks of the Services
-- that name it, kept in step with a Kubernetes Service and EndpointSlice).
--
-- Plain Lua 5.1 with the base and table libraries only: Argo CD runs argocd-cm scripts
-- without the string, math, io and os libraries.
--
--   no status yet                          -> Progressing
--   status.observedGeneration behind       -> Progressing (the operator has not seen this spec)
--   unhealthy targets and no healthy one   -> Degraded    (no traffic can be served)
--   unhealthy or initial targets besides healthy ones
--                                          -> Progressing (the owning Service replaces unhealthy
--                                             tasks; its own health turns Degraded if it cannot)
--   Ready False                            -> Degraded    (e.g. the Kubernetes Service could not
--                                             be created)
--   Ready True                             -> Healthy     (also with zero targets: a service
--                                             scaled to 0 leaves a valid, empty target group)
--   otherwise                              -> Progressing
-- Set UNHEALTHY_TARGET_DEGRADES to true to call any unhealthy target Degraded instead.
local UNHEALTHY_TARGET_DEGRADES = false

local hs = {}

local function condition(status, type_name)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_name then
      return c
    end
  end
  return nil
end

-- Targets per state, counted from status.targets[]: the status counts have no "initial".
local function count_targets(targets)
  local counts = { initial = 0, healthy = 0, unhealthy = 0, draining = 0 }
  for _, t in ipairs(targets or {}) do
    if counts[t.state] ~= nil then
      counts[t.state] = counts[t.state] + 1
    end
  end
  return counts
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the load balancer status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local n = count_targets(status.targets)
local summary = "targets: " .. n.healthy .. " healthy, " .. n.unhealthy .. " unhealthy, "
  .. n.initial .. " initial, " .. n.draining .. " draining"

if n.unhealthy > 0 and (n.healthy == 0 or UNHEALTHY_TARGET_DEGRADES) then
  hs.status = "Degraded"
  hs.message = "Unhealthy " .. summary
  return hs
end
if n.unhealthy > 0 or n.initial > 0 then
  hs.status = "Progressing"
  hs.message = "Health checks in progress, " .. summary
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Ready, " .. summary
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the Ready condition, " .. summary
return hs
