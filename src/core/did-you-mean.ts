const MAX_INPUT_LENGTH = 256;

/** Suggests the closest known name for a misspelled one (option names, column names). */
export function closestMatch(input: string, candidates: Iterable<string>, maxDistance = 3): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  // Names are short; a long input (a corrupt or hostile request) gets no suggestion, and
  // candidates whose length alone puts them out of reach are skipped: the distance table
  // is length x length, so a megabyte-long key would otherwise cost gigabytes.
  if (input.length > MAX_INPUT_LENGTH) return undefined;
  const needle = input.toLowerCase();
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - needle.length) > maxDistance) continue;
    const distance = editDistance(needle, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.min(maxDistance, Math.max(1, Math.floor(needle.length / 2)));
  return bestDistance <= limit ? best : undefined;
}

/** Damerau-Levenshtein (optimal string alignment) distance. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = value;
    }
  }
  return d[rows - 1]![cols - 1]!;
}
