// What the kubelet reports, read the same way whatever its version: pure functions over the Pod versions a test saw,
// so that the real-node suite waits for what is reported rather than assuming when. Kubernetes 1.33 and later (the
// captures in test/fixtures/k8s-1.33, k8s-1.35) differ from 1.20 where it matters here: the terminal phase comes in a
// later update than the last container's termination; that update clears lastState; native sidecars report in
// initContainerStatuses; and a killed native sidecar shows terminated 137 for a second before its restart.
import type { ContainerStatus, Pod } from "../../kube.ts";

type Terminated = { exitCode: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string };
/** A container's status with what the kubelet reports beyond what proa reads. */
export type KubeletStatus = ContainerStatus & {
  restartCount: number;
  started?: boolean;
  state?: { terminated?: Terminated; running?: object; waiting?: object };
  lastState?: { terminated?: Terminated };
};

/** A container's status, regular or native (an init container's), if the Pod reports one. */
export function containerStatus(pod: Pod | undefined, container: string): KubeletStatus | undefined {
  const all = [...(pod?.status?.containerStatuses ?? []), ...(pod?.status?.initContainerStatuses ?? [])];
  return all.find((s) => s.name === container) as KubeletStatus | undefined;
}

/** The Pod has its terminal phase: the kubelet has finished with it. */
export const podEnded = (pod: Pod | undefined): boolean =>
  pod?.status?.phase === "Succeeded" || pod?.status?.phase === "Failed";

/** Every regular container has terminated (native sidecars, which the kubelet stops after them, not counted). */
export const allTerminated = (pod: Pod | undefined): boolean =>
  !!pod?.status?.containerStatuses?.length &&
  pod.status.containerStatuses.every((s) => s.state?.terminated !== undefined);

/** The most recent earlier run of a container any version showed: the final version may have lost it (1.33+ clears
 * lastState in the update before the terminal phase). */
export function earlierRun(versions: Pod[], container: string): Terminated | undefined {
  return versions.map((pod) => containerStatus(pod, container)?.lastState?.terminated).findLast(Boolean);
}

/** Whether any version showed the container dead of exitCode, in its state or as its last run. */
export function seenExit(versions: Pod[], container: string, exitCode: number): boolean {
  return versions.some((pod) => {
    const status = containerStatus(pod, container);
    return status?.state?.terminated?.exitCode === exitCode || status?.lastState?.terminated?.exitCode === exitCode;
  });
}

/** The highest restartCount any version showed (it survives the final update's cleared lastState). */
export function restarts(versions: Pod[], container: string): number {
  return Math.max(0, ...versions.map((pod) => containerStatus(pod, container)?.restartCount ?? 0));
}

/** A version in which the program's container ran while the native sidecar had started but was not ready: the gap
 * the kubelet leaves (it gates the next container on `started`) and proa fills. */
export function mainRanBeforeReady(versions: Pod[], main: string, sidecar: string): boolean {
  return versions.some((pod) => {
    const s = containerStatus(pod, sidecar);
    return !!containerStatus(pod, main)?.state?.running && s?.started === true && s.ready === false;
  });
}
