// The Hubot side of scripts/bench-vs-hubot.sh: one regex listener per
// command of scripts/bench/commands.txt, answering with a line of text.
// No policy, no audit, no cluster: Hubot's dispatch alone.
export default (robot) => {
  robot.hear(/^scale (\S+) to (\d+) in (\S+)$/i, (res) => {
    res.send(`scaling ${res.match[1]} in ${res.match[3]} to ${res.match[2]}`)
  })
  robot.hear(/^status of (\S+) in (\S+)$/i, (res) => {
    res.send(`${res.match[1]} (${res.match[2]}): status requested`)
  })
  robot.hear(/^rollback (\S+) in (\S+)$/i, (res) => {
    res.send(`rolling back ${res.match[1]} in ${res.match[2]}`)
  })
  robot.hear(/^restart (\S+) in (\S+)$/i, (res) => {
    res.send(`restarting ${res.match[1]} in ${res.match[2]}`)
  })
  robot.hear(/^logs of (\S+) in (\S+)$/i, (res) => {
    res.send(`logs of ${res.match[1]} in ${res.match[2]}`)
  })
  robot.hear(/^error rate of (\S+) over the last (\S+)$/i, (res) => {
    res.send(`error rate of ${res.match[1]} over the last ${res.match[2]}`)
  })
  robot.hear(/^run the (\S+) eval against (\S+)$/i, (res) => {
    res.send(`running ${res.match[1]} with ${res.match[2]}`)
  })
}
