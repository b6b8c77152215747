import { Packr } from 'msgpackr';

// useRecords: false keeps bodies plain msgpack, so any msgpack reader (nats CLI + msgpack tool,
// `craneadm trace`) can decode the bus.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(data: Uint8Array): T {
  if (data.length === 0) return undefined as T;
  return packr.unpack(data) as T;
}
