/**
 * Keeping credentials out of everything we print, log or record: URLs with `user:pass@`,
 * bearer tokens, and config values whose key says they are secret.
 */

const CREDENTIAL_URL = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]+)(?::([^\s/@]*))?@/gi;
const BEARER = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/g;
const BASIC = /\b(Authorization:\s*Basic)\s+[A-Za-z0-9+/=]+/gi;
const SECRET_WORD = /password|passwd|secret|credential|api[_-]?key|private[_-]?key/;
// `hf_token`, `accessToken`, `tracking.token` are secrets; `tokenizer`, `max_tokens`, `pad_token` are not.
const TOKEN_SUFFIX = /(^|[_-])(token|auth)$/;
const SPECIAL_TOKEN = /(^|_)(pad|bos|eos|unk|sep|cls|mask|start|end)_token$/;
export const MASK = '***';

/** Replaces the userinfo of every URL in `text` (and any Authorization-style value) with `***`. */
export function redact(text: string): string {
  return text.replace(CREDENTIAL_URL, (_m, scheme: string) => `${scheme}${MASK}@`).replace(BEARER, (_m, kind: string) => `${kind} ${MASK}`)
    .replace(BASIC, (_m, kind: string) => `${kind} ${MASK}`);
}

/** A tracking URI safe to print: `https://***@host/...` when it carried credentials. */
export function redactUri(uri: string): string {
  return redact(uri);
}

/** Whether a config key names a secret (its value must never be logged). */
export function isSecretKey(key: string): boolean {
  const k = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  if (SECRET_WORD.test(k)) return true;
  const last = k.split(/[./]/).pop() ?? k;
  return TOKEN_SUFFIX.test(last) && !SPECIAL_TOKEN.test(last);
}

/**
 * Applied to flattened params/tags before they leave the process: secret-named keys get `***`,
 * and credential URLs inside any other value are redacted.
 */
export function scrubSecrets<T extends string | number | boolean | null | undefined>(record: Record<string, T>): Record<string, T | string> {
  const out: Record<string, T | string> = {};
  for (const [k, v] of Object.entries(record)) {
    if (isSecretKey(k) && v !== undefined && v !== null && v !== '') out[k] = MASK;
    else out[k] = typeof v === 'string' ? redact(v) : v;
  }
  return out;
}
