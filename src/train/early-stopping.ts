/** Early stopping on a validation metric: stop after `patience` epochs without improvement. */
export class EarlyStopping {
  best: number | null = null;
  bestEpoch = -1;
  private bad = 0;

  constructor(readonly goal: 'max' | 'min', readonly patience: number, readonly minDelta = 0) {}

  /** Records one epoch's value; `improved` means a new best (checkpoint it). NaN never improves. */
  update(value: number, epoch: number): { improved: boolean; stop: boolean } {
    const better = !Number.isNaN(value) && (this.best === null
      || (this.goal === 'max' ? value > this.best + this.minDelta : value < this.best - this.minDelta));
    if (better) {
      this.best = value;
      this.bestEpoch = epoch;
      this.bad = 0;
    } else {
      this.bad += 1;
    }
    return { improved: better, stop: this.bad >= this.patience };
  }

  state(): { best: number | null; bestEpoch: number; bad: number } {
    return { best: this.best, bestEpoch: this.bestEpoch, bad: this.bad };
  }

  restore(s: { best: number | null; bestEpoch: number; bad: number }): void {
    this.best = s.best;
    this.bestEpoch = s.bestEpoch;
    this.bad = s.bad;
  }
}
