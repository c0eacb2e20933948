// waitUntilReady when the Pod it saw is deleted during the wait, with and without --ready-timeout, against the fake API
// server over real HTTPS. Without one, a Pod that is missing is given up on only after giveUpMs: a deleted one must not be.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { loadCluster, waitUntilReady, type Cluster, type Timing } from "../kube.ts";
import { podWith, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.ts";
import { recordingLog } from "./helpers/shutdown-log.ts";

// giveUpMs is short enough that a deleted Pod taken for a missing one fails the test with the give-up error, not a hang.
const fast: Partial<Timing> = {
  backoffBaseMs: 10,
  backoffMaxMs: 40,
  watchTimeoutSeconds: 0,
  idleMarginMs: 2000,
  reminderMs: 60_000,
  giveUpMs: 2000,
};

let api: FakeApiServer | undefined;
let cluster: Cluster | undefined;
afterEach(async () => {
  cluster?.agent.destroy();
  await api?.close();
  api = cluster = undefined;
});

describe("a Pod deleted while proa waits for its containers", { timeout: 20_000 }, () => {
  for (const readyTimeoutMs of [undefined, 10_000]) {
    test(`ends the wait with an error that says so, not as a missing Pod, ${readyTimeoutMs === undefined ? "without" : "with"} --ready-timeout`, async () => {
      api = await startFakeApiServer({ pod: podWith({ sidecars: ["sidecar-1"] }) });
      cluster = loadCluster(api.env(), "proa/test");
      const deleting = api;
      // After the list (request 1) and the watch (request 2): proa has seen the Pod, not ready, before it goes.
      api.onRequest = () => void (deleting.requests.length === 2 && setImmediate(() => deleting.setPod(null)));
      const log = recordingLog();
      const controller = new AbortController(); // stops the watch whatever the outcome, so that nothing retries a closed server
      const waiting = waitUntilReady(
        cluster,
        { waitFor: [], ignore: [], ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }) },
        log,
        controller.signal,
        undefined,
        fast,
      );
      try {
        await assert.rejects(
          waiting,
          /^Error: Pod proa-e2e\/proa-demo was deleted while proa waited for its containers to be ready$/,
        );
      } finally {
        controller.abort(new Error("the test ended"));
      }
      assert.deepEqual(
        log.lines.filter((line) => /POD_NAME/.test(line.msg)),
        [],
        "a deleted Pod is not a configuration error",
      );
    });
  }
});
