// Rules that involve more than one key, or a value only known once resolved. Checked on the merged
// values, and only for keys whose own values were all valid.
import type { ConfigProblem } from './errors.js';
import { type EffectiveValue, sourceLabel, sourceRank } from './layer.js';
import { MAX_SOCKET_PATH_BYTES } from './paths.js';

export function checkRules(values: ReadonlyMap<string, EffectiveValue>, invalidKeys: ReadonlySet<string>, problems: ConfigProblem[]): void {
  const usable = (...keys: string[]): boolean => keys.every((key) => !invalidKeys.has(key) && values.has(key));
  const number = (key: string): number => values.get(key)?.value as number;

  if (usable('memory.critical_threshold_bytes', 'memory.min_available_bytes')) {
    if (number('memory.critical_threshold_bytes') >= number('memory.min_available_bytes')) {
      problems.push(pairProblem(values, 'memory.critical_threshold_bytes', 'less than', 'memory.min_available_bytes', 'greater than'));
    }
  }
  if (usable('restart.initial_backoff_ms', 'restart.max_backoff_ms')) {
    if (number('restart.initial_backoff_ms') > number('restart.max_backoff_ms')) {
      problems.push(pairProblem(values, 'restart.initial_backoff_ms', 'at most', 'restart.max_backoff_ms', 'at least'));
    }
  }
  const socket = values.get('socket_path');
  if (socket !== undefined && usable('socket_path')) {
    const bytes = Buffer.byteLength(socket.value as string);
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      problems.push({
        ...socket.origin,
        key: 'socket_path',
        expected: `a path of at most ${MAX_SOCKET_PATH_BYTES} bytes once resolved (the Unix socket limit)`,
        got: `${JSON.stringify(socket.value)} (${bytes} bytes)`,
        hint: 'set a shorter socket_path, e.g. under $XDG_RUNTIME_DIR',
      });
    }
  }
}

/**
 * `left` must be `relation` `right`. The problem is reported at whichever of the two was set by
 * the higher-precedence source, since that is the setting that broke the pair.
 */
function pairProblem(
  values: ReadonlyMap<string, EffectiveValue>,
  left: string,
  relation: string,
  right: string,
  inverse: string,
): ConfigProblem {
  const leftValue = values.get(left) as EffectiveValue;
  const rightValue = values.get(right) as EffectiveValue;
  const blameRight = sourceRank(rightValue.source) > sourceRank(leftValue.source);
  const [key, blamed, otherKey, other, words] = blameRight
    ? [right, rightValue, left, leftValue, inverse]
    : [left, leftValue, right, rightValue, relation];
  return {
    ...blamed.origin,
    key,
    expected: `${words} ${otherKey} (${String(other.value)}, from ${sourceLabel(other.source)})`,
    got: String(blamed.value),
  };
}
