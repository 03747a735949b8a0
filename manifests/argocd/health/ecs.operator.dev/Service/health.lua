-- Argo CD health of an ecs.operator.dev Service (an ECS service: keeps desiredCount tasks running).
--
-- Plain Lua 5.1 with the base and table libraries only: Argo CD runs argocd-cm scripts
-- without the string, math, io and os libraries.
--
--   no status yet                          -> Progressing
--   status.observedGeneration behind       -> Progressing (the operator has not seen this spec)
--   newest serviceDeployments[] ROLLBACK_IN_PROGRESS
--                                          -> Progressing (rolling back to the last successful
--                                             service revision)
--   newest serviceDeployments[] ROLLBACK_FAILED
--                                          -> Degraded (the rollback failed too)
--   Degraded True                          -> Degraded (failed deployment, tasks that cannot start
--                                             or be placed, unusable task definition ...)
--   PRIMARY deployment rolloutState FAILED -> Degraded (circuit breaker)
--   Progressing reason AwaitingAction      -> Suspended (a PAUSE lifecycle hook holds the
--                                             deployment until spec.continueServiceDeployment
--                                             answers it or it times out)
--   Progressing True, or PRIMARY rolloutState IN_PROGRESS
--                                          -> Progressing (a deployment is rolling out)
--   Ready False                            -> Progressing (not in steady state yet)
--   runningCount == desiredCount and the PRIMARY deployment COMPLETED
--                                          -> Healthy
--   otherwise                              -> Progressing
-- A scaled-to-zero service (desiredCount 0) is Healthy, as a Deployment with 0 replicas is.
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

local function primary_deployment(status)
  for _, d in ipairs(status.deployments or {}) do
    if d.status == "PRIMARY" then
      return d
    end
  end
  return nil
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the service status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local running = status.runningCount or 0
local desired = status.desiredCount or 0
local counts = running .. " of " .. desired .. " tasks running, " .. (status.pendingCount or 0)
  .. " pending"
local primary = primary_deployment(status)

-- serviceDeployments[] is newest first: the first says where the last deployment stands.
local latest = (status.serviceDeployments or {})[1]
if latest ~= nil and latest.status == "ROLLBACK_IN_PROGRESS" then
  hs.status = "Progressing"
  hs.message = "Rolling back: " .. (latest.statusReason or "") .. " (" .. counts .. ")"
  return hs
end
if latest ~= nil and latest.status == "ROLLBACK_FAILED" then
  hs.status = "Degraded"
  hs.message = "Rollback failed: " .. (latest.statusReason or "")
  return hs
end

local degraded = condition(status, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
if primary ~= nil and primary.rolloutState == "FAILED" then
  hs.status = "Degraded"
  hs.message = "Deployment " .. primary.id .. " FAILED: " .. (primary.rolloutStateReason or "")
  return hs
end

local progressing = condition(status, "Progressing")
if progressing ~= nil and progressing.status == "True" and progressing.reason == "AwaitingAction" then
  hs.status = "Suspended"
  hs.message = progressing.message or "A lifecycle hook awaits action"
  return hs
end
if (progressing ~= nil and progressing.status == "True")
    or (primary ~= nil and primary.rolloutState == "IN_PROGRESS") then
  hs.status = "Progressing"
  if primary ~= nil then
    hs.message = "Deployment " .. primary.id .. " of " .. primary.taskDefinition .. " in progress: "
      .. (primary.runningCount or 0) .. " of " .. (primary.desiredCount or 0) .. " tasks running, "
      .. (primary.pendingCount or 0) .. " pending"
    if primary.lifecycleStage ~= nil then
      -- BLUE_GREEN, LINEAR, CANARY: where it is, and the new revision's production share.
      hs.message = hs.message .. "; " .. primary.lifecycleStage .. ", "
        .. (primary.productionTrafficWeight or 0) .. "% of production"
    end
  else
    hs.message = "Deployment in progress: " .. counts
  end
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Progressing"
  hs.message = "Not in steady state: " .. (ready.message or counts)
  return hs
end

-- FAILED and IN_PROGRESS were handled above: the PRIMARY is COMPLETED (or has no rolloutState).
if running == desired then
  hs.status = "Healthy"
  hs.message = "Steady state: " .. counts
  return hs
end

hs.status = "Progressing"
hs.message = counts
return hs
