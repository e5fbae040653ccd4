// Unknown option names are refused: a misspelt option silently ignored (maxBuferedMsgs) leaves the
// default in force with nothing to say so.

/**
 * Throws a TypeError for the first own key of `input` that is not in `known`, naming the closest
 * valid name when one is near. `where` is how the object is named in the message ('options').
 */
export function rejectUnknownKeys(input: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(input)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    const hint = near ? `; did you mean ${where}.${near}?` : `; the options are ${known.join(', ')}`;
    throw new TypeError(`${where}.${key} is not an option${hint}`);
  }
}

/** The name in `names` nearest to `word` (edit distance, case ignored), if it is near enough to be a slip. */
function closest(word: string, names: readonly string[]): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = distance(w, name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** Levenshtein distance, one row at a time. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
