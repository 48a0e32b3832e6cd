import { EgmfError } from '../../errors.ts';
import { canonicalJson, type FrozenTrial, type JsonValue, type Params, type SearchSpace } from '../space.ts';
import type { Sampler } from './types.ts';

/** Grids larger than this are almost certainly a spec mistake (a q far too small). */
export const MAX_GRID_POINTS = 100_000;

/**
 * Every point of the grid, in order. Parameters are expanded in the space's topological
 * order, so a conditional parameter only multiplies the branches where its condition holds.
 */
export function enumerateGrid(space: SearchSpace): Params[] {
  const values = new Map<string, JsonValue[]>();
  for (const name of space.order) {
    const v = space.dist(name).enumerate();
    if (v === undefined) {
      throw new EgmfError('continuous distribution cannot be enumerated by grid search; give values or q', { key: `parameters.${name}` });
    }
    values.set(name, v);
  }
  const out: Params[] = [];
  const expand = (i: number, partial: Params): void => {
    if (out.length > MAX_GRID_POINTS) throw new EgmfError(`grid has more than ${MAX_GRID_POINTS} points`, { key: 'parameters' });
    if (i === space.order.length) {
      out.push({ ...partial });
      return;
    }
    const name = space.order[i];
    if (!space.isActive(name, partial)) return expand(i + 1, partial);
    for (const v of values.get(name) as JsonValue[]) {
      partial[name] = v;
      expand(i + 1, partial);
    }
    delete partial[name];
  };
  expand(0, {});
  return out;
}

/**
 * Walks the grid in order, skipping every point already in the history whatever its state
 * (running points are taken; failed ones are the executor's to retry). Returns null once
 * every point has been asked.
 */
export class GridSampler implements Sampler {
  readonly name = 'grid';
  private cache = new WeakMap<SearchSpace, { points: Params[]; keys: string[] }>();
  ask(space: SearchSpace, history: readonly FrozenTrial[]): Params | null {
    const grid = this.grid(space);
    const seen = new Set(history.map((t) => paramsKey(t.params)));
    const i = grid.keys.findIndex((k) => !seen.has(k));
    return i < 0 ? null : { ...grid.points[i] };
  }
  /** Number of points in the grid of `space`. */
  size(space: SearchSpace): number {
    return this.grid(space).points.length;
  }
  private grid(space: SearchSpace): { points: Params[]; keys: string[] } {
    let g = this.cache.get(space);
    if (!g) {
      const points = enumerateGrid(space);
      g = { points, keys: points.map(paramsKey) };
      this.cache.set(space, g);
    }
    return g;
  }
}

export function paramsKey(p: Readonly<Params>): string {
  return canonicalJson(p as Params);
}
