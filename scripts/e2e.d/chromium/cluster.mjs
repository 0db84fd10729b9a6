// The web phone through HAProxy in front of two siphons (80-cluster): in a
// call on the echo, the instance holding the page drains (SIGTERM); the call
// goes on; once it ends, siphon asks the page to move (close 1012) and the
// page reconnects by itself, through HAProxy, to the other instance. With
// `killed`, the instance holding the page is killed (SIGKILL) instead: the
// connection breaks without a close frame and the page reconnects all the
// same.
//
//   node cluster.mjs BALANCER A_BASE A_PID B_BASE B_PID [killed]
import { check, metric, runPageAt, sleep, stats, waitState } from "./common.mjs";

const [balancer, aBase, aPid, bBase, bPid, how] = process.argv.slice(2);
const instances = [{ name: "A", base: aBase, pid: Number(aPid) }, { name: "B", base: bBase, pid: Number(bPid) }];
const sessions = (i) => metric(i.base, "siphon_ws_connections");

await runPageAt(`${balancer}/?user=dave`, async (page) => {
  const open = await Promise.all(instances.map(sessions));
  const held = instances[open.indexOf(1)];
  const other = instances.find((i) => i !== held);
  check(held && (await sessions(other)) === 0, `the page is on instance ${held?.name} (sessions ${open})`);

  if (how === "killed") {
    process.kill(held.pid, "SIGKILL");
    await moved(page, other);
    return;
  }
  await page.fill("#to", "echo");
  await page.click("#call");
  await waitState(page, "in-call");
  process.kill(held.pid, "SIGTERM");
  await sleep(1500);
  const a = await stats(page);
  await sleep(2000);
  const b = await stats(page);
  check(b.received - a.received >= 50, `the call goes on while ${held.name} drains (received ${a.received}->${b.received})`);
  check((await page.textContent("#conn")).startsWith("connected"), "the socket with the call stays");

  await page.click("#hangup");
  await waitState(page, "ended");
  // Asked to move a second after its last call, the page reconnects.
  await moved(page, other);
}, ["--ignore-certificate-errors"]);

// The page reconnects by itself to `other` and a call works there.
async function moved(page, other) {
  for (let i = 0; i < 75 && (await sessions(other)) !== 1; i++) await sleep(200);
  check((await sessions(other)) === 1, `a socket opened on instance ${other.name}`);
  await page.waitForFunction(() => document.getElementById("conn").textContent.startsWith("connected"), null, { timeout: 5000 });
  check(true, `the page moved to instance ${other.name} by itself (${await page.textContent("#conn")})`);
  await page.fill("#to", "echo");
  await page.click("#call");
  await waitState(page, "in-call");
  const c = await stats(page);
  await sleep(1500);
  const d = await stats(page);
  check(d.received - c.received >= 30, `a new call works on ${other.name} (received ${c.received}->${d.received})`);
  await page.click("#hangup");
  await waitState(page, "ended");
}
