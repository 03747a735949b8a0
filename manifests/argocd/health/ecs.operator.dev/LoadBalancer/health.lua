-- Argo CD health of an ecs.operator.dev LoadBalancer (a target group: the tasks of the Services
-- that name it, kept in step with a Kubernetes Service and its EndpointSlices).
--
-- Plain Lua 5.1 with the base and table libraries only: Argo CD runs argocd-cm scripts
-- without the string, math, io and os libraries.
--
-- Reads what the operator writes: status.healthyCount, unhealthyCount, initialCount,
-- drainingCount and the Ready and Degraded conditions.
--
--   no status yet                          -> Progressing
--   status.observedGeneration behind       -> Progressing (the operator has not seen this spec)
--   Degraded True, not for unhealthy targets (e.g. ServiceMisconfigured: deleted while a
--   Service still names it)                -> Degraded
--   unhealthy targets and no healthy one   -> Degraded    (no traffic can be served)
--   unhealthy or initial targets besides healthy ones
--                                          -> Progressing (the owning Service replaces unhealthy
--                                             tasks; its own health turns Degraded if it cannot)
--   Ready True                             -> Healthy
--   Ready False, reason NoTargets          -> Healthy     (a service scaled to 0 leaves a valid,
--                                             empty target group)
--   otherwise (only draining targets, no conditions yet)
--                                          -> Progressing
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

local healthy = status.healthyCount or 0
local unhealthy = status.unhealthyCount or 0
local initial = status.initialCount or 0
local draining = status.drainingCount or 0
local summary = "targets: " .. healthy .. " healthy, " .. unhealthy .. " unhealthy, "
  .. initial .. " initial, " .. draining .. " draining"

local degraded = condition(status, "Degraded")
if degraded ~= nil and degraded.status == "True" and degraded.reason ~= "TargetsUnhealthy" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
if unhealthy > 0 and (healthy == 0 or UNHEALTHY_TARGET_DEGRADES) then
  hs.status = "Degraded"
  hs.message = "Unhealthy " .. summary
  return hs
end
if unhealthy > 0 or initial > 0 then
  hs.status = "Progressing"
  hs.message = "Health checks in progress, " .. summary
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Ready, " .. summary
  return hs
end
if ready ~= nil and ready.reason == "NoTargets" then
  hs.status = "Healthy"
  hs.message = "No targets registered"
  return hs
end

hs.status = "Progressing"
if ready == nil then
  hs.message = "Waiting for the Ready condition, " .. summary
else
  hs.message = "No healthy target yet, " .. summary
end
return hs
