/**
 * The messages between the digit pad and its training worker.
 *
 * @module
 */

/** Page → worker: train with these settings. */
export interface StartMessage {
  /** Discriminator. */
  type: "start";
  /** Optimizer steps to take. */
  steps: number;
  /** Examples per step. */
  batchSize: number;
  /** Peak learning rate of SGD with Nesterov momentum 0.9. */
  lr: number;
  /** Threads for the kernels, the worker's own included. */
  threads: number;
  /** Seed of the initial weights and the shuffling. */
  seed: number;
}

/** Page → worker: stop after the current step and send the model as it is. */
export interface StopMessage {
  /** Discriminator. */
  type: "stop";
}

/** What the page sends. */
export type ToWorker = StartMessage | StopMessage;

/** Worker → page: a line for the status area (loading data, starting threads, …). */
export interface StatusMessage {
  /** Discriminator. */
  type: "status";
  /** The line. */
  text: string;
}

/** Worker → page: training progress since the last report. */
export interface ProgressMessage {
  /** Discriminator. */
  type: "progress";
  /** Steps done so far. */
  step: number;
  /** Mean training loss over the steps since the last report. */
  loss: number;
  /** Training images per second so far (training steps only, evaluations excluded). */
  imagesPerSecond: number;
  /** Threads the kernels use. */
  threads: number;
}

/** Worker → page: error on the held-out test images after `step` steps. */
export interface EvalMessage {
  /** Discriminator. */
  type: "eval";
  /** Steps done so far. */
  step: number;
  /** Fraction of the evaluated test images misclassified. */
  testError: number;
  /** How many test images were evaluated. */
  images: number;
}

/** Worker → page: training ended; the weights of the model as trained. */
export interface DoneMessage {
  /** Discriminator. */
  type: "done";
  /** Steps done (fewer than asked when stopped). */
  step: number;
  /** Whether the page stopped it. */
  stopped: boolean;
  /** The MLP's options, for rebuilding it. */
  options: { inFeatures: number; hidden: [number, number]; numClasses: number };
  /** Its state dict, by PyTorch name. */
  state: Record<string, { shape: number[]; data: Float32Array }>;
  /** Error on the whole test split (10,000 images). */
  testError: number;
  /** Training images per second over the run. */
  imagesPerSecond: number;
}

/** Worker → page: it failed; the message says why. */
export interface ErrorMessage {
  /** Discriminator. */
  type: "error";
  /** What went wrong. */
  text: string;
}

/** What the worker sends. */
export type FromWorker =
  | StatusMessage
  | ProgressMessage
  | EvalMessage
  | DoneMessage
  | ErrorMessage;
