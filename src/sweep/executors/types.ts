import type { TrialOutcome, TrialPayload } from '../trial-protocol.ts';

/** What the controller answers while a trial runs. */
export interface TrialHandlers {
  /** The trial's MLflow run exists (may be called again for a re-delivery, with a new run). */
  onStarted(runId: string): void | Promise<void>;
  /** An epoch's metric; resolves to the prune decision sent back to the trial. */
  onReport(step: number, value: number): boolean | Promise<boolean>;
}

/**
 * Runs trials somewhere (local processes, a queue of remote workers). The controller decides
 * how many run at once; an executor only carries one trial to its final outcome. Running the
 * same trial id twice must be safe (resume re-dispatches trials that were in flight).
 */
export interface Executor {
  /** For messages: where trials run. */
  readonly description: string;
  run(payload: TrialPayload, handlers: TrialHandlers): Promise<TrialOutcome>;
  /** Stops (local: kills running trials; queue: disconnects, leaving queued jobs to workers). */
  close(): Promise<void>;
}
