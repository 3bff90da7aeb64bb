// Score an http-cache-tests results file the way the suite's own determineTestResult does
// (lib/display.mjs in http-cache-tests 0.4.5), dependencies honoured. That function lives in a
// browser-only module (it imports DOM helpers), so its decision table is restated here verbatim.
//
// usage: node score.mjs results.json [--json]
import fs from 'fs'
import tests from 'http-cache-tests/tests/index.mjs'
import surrogate from 'http-cache-tests/tests/surrogate-control.mjs'

tests.push(surrogate) // the CLI runs the surrogate-control suite too (cli.mjs)

const byId = {}
for (const suite of tests) for (const test of suite.tests) byId[test.id] = test

const results = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const passTypes = new Set(['pass', 'yes'])

function determine (id, seen = new Set()) {
  const test = byId[id]
  const result = results[id]
  if (result === undefined) return 'untested'
  if (test.depends_on !== undefined) {
    for (const dep of test.depends_on) {
      if (!passTypes.has(determine(dep))) return 'dependency_fail'
    }
  }
  if (result[0] === 'Setup') return result[1] === 'retry' ? 'retry' : 'setup_fail'
  if (result === false && result[0] !== 'Assertion') return 'harness_fail'
  const kind = test.kind
  if (kind === 'required' || kind === undefined) return result === true ? 'pass' : 'fail'
  if (kind === 'optimal') return result === true ? 'pass' : 'optional_fail'
  if (kind === 'check') return result === true ? 'yes' : 'no'
  throw new Error(`Unrecognised test kind ${kind}`)
}

const summary = { required: { total: 0, passed: 0 }, optional: { total: 0, passed: 0 }, check: { total: 0, yes: 0 }, hard_failures: [], outcomes: {} }
for (const id of Object.keys(byId)) {
  const test = byId[id]
  const kind = test.kind || 'required'
  const outcome = determine(id)
  summary.outcomes[outcome] = (summary.outcomes[outcome] || 0) + 1
  if (kind === 'required') {
    summary.required.total++
    if (outcome === 'pass') summary.required.passed++
    if (outcome === 'fail') summary.hard_failures.push({ id, detail: results[id] })
  } else if (kind === 'optimal') {
    summary.optional.total++
    if (outcome === 'pass') summary.optional.passed++
  } else {
    summary.check.total++
    if (outcome === 'yes') summary.check.yes++
  }
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(summary, null, 2))
} else {
  console.log(`required passed: ${summary.required.passed}/${summary.required.total}`)
  console.log(`optional passed: ${summary.optional.passed}/${summary.optional.total}`)
  console.log(`checks answered yes: ${summary.check.yes}/${summary.check.total}`)
  console.log(`hard failures: ${summary.hard_failures.length}`)
  for (const f of summary.hard_failures) console.log(`  ${f.id}: ${JSON.stringify(f.detail)}`)
  console.log(`outcomes: ${JSON.stringify(summary.outcomes)}`)
}
