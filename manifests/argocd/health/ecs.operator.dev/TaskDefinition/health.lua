-- Argo CD health of an ecs.operator.dev TaskDefinition (an ECS task definition family).
--
-- Plain Lua 5.1 with the base and table libraries only: Argo CD runs argocd-cm scripts
-- without the string, math, io and os libraries.
--
--   no status yet                          -> Progressing
--   status.observedGeneration behind       -> Progressing (the operator has not seen this spec;
--                                             Argo CD's guidelines: avoids flapping health)
--   Accepted True                          -> Healthy   (registered as revision family:N)
--   Accepted False                         -> Degraded  (the spec was refused, e.g. a policy)
--   Accepted Unknown or missing            -> Progressing
-- A refused spec leaves the previous revision usable; Degraded still says the latest spec in Git
-- is not what runs.
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
  hs.message = "Waiting for the operator to register the task definition"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local accepted = condition(status, "Accepted")
if accepted ~= nil and accepted.status == "True" then
  hs.status = "Healthy"
  hs.message = accepted.message or "Registered"
  return hs
end
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = (accepted.reason or "NotAccepted") .. ": " .. (accepted.message or "")
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the Accepted condition"
return hs
