// make deploy-rehearsal, policies: evaluates each simulation read from stdin (a JSON array of
// @cloud-copilot/iam-simulate Simulation objects) and prints a JSON array of
// {result, errors}. tools/python/deploy_rehearsal_policies.py asks the questions and checks the
// answers. iam-simulate is AGPL-3.0: a test tool here, never shipped.
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const answers = []
for (const simulation of JSON.parse(input)) {
  if (!simulation.resourcePolicy) delete simulation.resourcePolicy
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    answers.push({ result: 'Error', errors: JSON.stringify(response.errors) })
  } else {
    answers.push({ result: response.overallResult })
  }
}
process.stdout.write(JSON.stringify(answers))
