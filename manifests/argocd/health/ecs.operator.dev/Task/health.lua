-- Argo CD health of an ecs.operator.dev Task (one ECS task: runs once, never replaced).
--
-- Plain Lua 5.1 with the base and table libraries only: Argo CD runs argocd-cm scripts
-- without the string, math, io and os libraries.
--
--   no status yet                          -> Progressing
--   status.observedGeneration behind       -> Progressing (the operator has not seen this spec)
--   STOPPED (condition Stopped True, reason = stopCode):
--     EssentialContainerExited, a container exited 0 and none failed
--                                          -> Healthy  (a batch task that completed)
--     EssentialContainerExited otherwise (a non-zero exit, OutOfMemoryError)
--                                          -> Degraded
--     UserInitiated, ServiceSchedulerInitiated
--                                          -> Healthy  (stopped as asked: desiredStatus STOPPED
--                                             in Git, or a service scaling in / replacing it)
--     TaskFailedToStart, TerminationNotice, SpotInterruption, anything else
--                                          -> Degraded (a task is never replaced: its work is lost)
--   Ready True (RUNNING)                   -> Healthy
--   Ready False with reason Unhealthy or NodeLost
--                                          -> Degraded
--   otherwise (PROVISIONING, PENDING, ACTIVATING, STOPPING ...)
--                                          -> Progressing
--
-- Which container is essential is not in the Task's status, so "completed" is judged on the
-- exit codes the status lists: at least one 0, and none other than 0 or the codes of containers
-- that the task's own stop killed (SIGKILL 137, SIGTERM 143: sidecars still running when the
-- essential container exited). Edit the tables below to change these decisions.
local REQUESTED_STOP_CODES = { UserInitiated = true, ServiceSchedulerInitiated = true }
local STOP_SIGNAL_EXIT_CODES = { [137] = true, [143] = true }
local DEGRADED_READY_REASONS = { Unhealthy = true, NodeLost = true }
local OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"

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

-- The first container whose exit code is a failure, and whether any container exited 0.
local function exits(containers)
  local any_zero = false
  local signalled = nil
  for _, c in ipairs(containers or {}) do
    if c.exitCode == 0 then
      any_zero = true
    elseif c.exitCode ~= nil and not STOP_SIGNAL_EXIT_CODES[c.exitCode] then
      return c, any_zero
    elseif c.exitCode ~= nil and signalled == nil then
      signalled = c
    end
  end
  if any_zero then
    return nil, true
  end
  return signalled, false
end

local function stopped_health(status, stop_code)
  local reason = status.stoppedReason or ""
  if REQUESTED_STOP_CODES[stop_code] then
    return "Healthy", "Task stopped (" .. stop_code .. "): " .. reason
  end
  if stop_code == "EssentialContainerExited" and reason ~= OUT_OF_MEMORY then
    local failed, completed = exits(status.containers)
    if completed then
      return "Healthy", "Task completed: " .. reason .. " (exit code 0)"
    end
    if failed ~= nil then
      return "Degraded", stop_code .. ": " .. reason .. " (container " .. failed.name
        .. " exited with code " .. failed.exitCode .. ")"
    end
  end
  return "Degraded", stop_code .. ": " .. reason
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to launch the task"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local stopped = condition(status, "Stopped")
if (stopped ~= nil and stopped.status == "True") or status.lastStatus == "STOPPED" then
  local stop_code = status.stopCode or (stopped and stopped.reason) or "Stopped"
  hs.status, hs.message = stopped_health(status, stop_code)
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "The task is RUNNING"
  return hs
end
if ready ~= nil and DEGRADED_READY_REASONS[ready.reason] then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end

hs.status = "Progressing"
hs.message = "The task is " .. (status.lastStatus or "PROVISIONING")
return hs
