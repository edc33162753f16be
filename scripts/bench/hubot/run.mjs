// Runs Hubot with the transcript adapter and the benchmark listeners, then
// exits when the transcript is played.
import { Robot } from 'hubot'
import adapter from './transcript-adapter.mjs'
import listeners from './listeners.mjs'

const robot = new Robot(adapter, false, 'hubot')
await robot.loadAdapter()
listeners(robot)
await robot.run()
robot.shutdown()
process.exit(0)
