import { EgmfError, type ErrorContext } from '../errors.ts';
import { redact } from './secrets.ts';

/** MLflow's error codes we act on; servers may send others, kept as plain strings. */
export type MlflowErrorCode =
  | 'INVALID_PARAMETER_VALUE'
  | 'RESOURCE_ALREADY_EXISTS'
  | 'RESOURCE_DOES_NOT_EXIST'
  | 'BAD_REQUEST'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'REQUEST_LIMIT_EXCEEDED'
  | 'INTERNAL_ERROR'
  | 'TEMPORARILY_UNAVAILABLE'
  | 'NETWORK_ERROR'
  | (string & {});

export interface MlflowErrorOptions extends ErrorContext {
  /** HTTP status, when the error came from a server. */
  status?: number;
  /**
   * The request may have been applied even though it failed (a 500, a reset connection):
   * resending it blindly could duplicate metrics.
   */
  ambiguous?: boolean;
  cause?: unknown;
}

/** An error with MLflow's `error_code`, from a server or from the file store's own checks. */
export class MlflowError extends EgmfError {
  readonly errorCode: MlflowErrorCode;
  readonly status: number | undefined;
  readonly ambiguous: boolean;

  constructor(errorCode: MlflowErrorCode, message: string, opts: MlflowErrorOptions = {}) {
    const { status, ambiguous, cause, ...ctx } = opts;
    super(`${errorCode}: ${redact(message)}`, ctx, cause === undefined ? undefined : { cause });
    this.name = 'MlflowError';
    this.errorCode = errorCode;
    this.status = status;
    this.ambiguous = ambiguous ?? false;
  }

  /** Network failures, throttling and server-side faults: worth trying again later. */
  get transient(): boolean {
    return this.errorCode === 'NETWORK_ERROR' || this.status === 429 || (this.status !== undefined && this.status >= 500);
  }
}

export function isMlflowError(e: unknown, code?: MlflowErrorCode): e is MlflowError {
  return e instanceof MlflowError && (code === undefined || e.errorCode === code);
}
