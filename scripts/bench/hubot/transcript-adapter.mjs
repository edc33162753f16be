// A Hubot adapter that plays a transcript file ("user@channel: message"
// lines, as `parley chat --transcript` reads them) and prints each reply,
// one message after the other like Parley's console adapter.
import fs from 'node:fs'
import readline from 'node:readline'
import { Adapter, TextMessage } from 'hubot'

class Transcript extends Adapter {
  constructor (robot, file) {
    super(robot)
    this.name = 'Transcript'
    this.file = file
    this.replies = 0
    this.out = []
  }

  async send (envelope, ...strings) {
    for (const s of strings) this.out.push(s)
    this.replies += strings.length
    if (this.out.length >= 512) this.flush()
  }

  async reply (envelope, ...strings) {
    await this.send(envelope, ...strings.map((s) => `${envelope.user.name}: ${s}`))
  }

  flush () {
    if (this.out.length > 0) process.stdout.write(this.out.join('\n') + '\n')
    this.out = []
  }

  async run () {
    this.emit('connected')
    const lines = readline.createInterface({ input: fs.createReadStream(this.file), crlfDelay: Infinity })
    let n = 0
    for await (const line of lines) {
      const m = /^([^@]+)@([^:]+): (.*)$/.exec(line)
      if (!m) continue
      const user = this.robot.brain.userForId(m[1], { name: m[1], room: m[2] })
      await this.robot.receive(new TextMessage(user, m[3], `m${++n}`))
    }
    this.flush()
    process.stderr.write(`hubot: ${n} messages, ${this.replies} replies\n`)
  }
}

export default { use: (robot) => new Transcript(robot, process.env.BENCH_TRANSCRIPT) }
