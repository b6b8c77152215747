/**
 * A job's default name: `<image basename>-<id prefix>`, the prefix (6 hex digits at least) made
 * longer until the name is free, so thousands of unnamed jobs never clash.
 */
export function defaultJobName(image: string, id: string, taken: (name: string) => boolean): string {
  const base = image.replace(/^.*\//, '').replace(/[^A-Za-z0-9_.-]/g, '-') || 'job';
  const hex = id.replace(/-/g, '');
  let len = 6;
  while (len < hex.length && taken(`${base}-${hex.slice(0, len)}`)) len++;
  return `${base}-${hex.slice(0, len)}`;
}
