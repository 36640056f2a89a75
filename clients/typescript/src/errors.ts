// HybridSearchError: a failed call with its gRPC code, the google.rpc.BadRequest field
// violations the server puts in the `grpc-status-details-bin` trailer (AIP-193) and, for an
// UpsertDocuments stream that failed part-way, its response so far from the same trailer.
import { type ServiceError, status } from "@grpc/grpc-js";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { UpsertDocumentsResponse } from "./gen/hybridsearch/v1/index.js";
import type { ErrorStatus } from "./gen/hybridsearch/v1/search.js";

export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * A failed call. `partialUpsert` is, for an UpsertDocuments stream that failed part-way
 * (RESOURCE_EXHAUSTED at capacity, UNAVAILABLE at the server's graceful stop, INVALID_ARGUMENT
 * for a bad later message, ...), the server's response so far: `appliedMessages` says how many
 * messages were applied (the first N; the rest were not: send those again on a new stream),
 * with their counts, rejections and generation. Undefined when the status carries none.
 */
export class HybridSearchError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    readonly fieldViolations: FieldViolation[] = [],
    readonly partialUpsert?: UpsertDocumentsResponse,
  ) {
    const fields = fieldViolations.map((v) => ` [${v.field}: ${v.description}]`).join("");
    super(`${status[code] ?? code}: ${details}${fields}`);
    this.name = "HybridSearchError";
  }
}

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";
const UPSERT_RESPONSE_TYPE_URL = "type.googleapis.com/hybridsearch.v1.UpsertDocumentsResponse";

// The two google.rpc messages needed here are decoded by hand (field numbers from
// google/rpc/status.proto and error_details.proto) instead of generating all of googleapis:
//   Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
//   Any { string type_url = 1; bytes value = 2; }
//   BadRequest { repeated FieldViolation field_violations = 1; }
//   FieldViolation { string field = 1; string description = 2; }
function forEachField(bytes: Uint8Array, visit: (field: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (wireType !== WireType.LengthDelimited || !visit(field, reader)) {
      reader.skip(wireType);
    }
  }
}

function decodeFieldViolations(badRequest: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  forEachField(badRequest, (field, reader) => {
    if (field !== 1) return false;
    const violation: FieldViolation = { field: "", description: "" };
    forEachField(reader.bytes(), (f, r) => {
      if (f === 1) violation.field = r.string();
      else if (f === 2) violation.description = r.string();
      else return false;
      return true;
    });
    out.push(violation);
    return true;
  });
  return out;
}

/** Each `google.protobuf.Any` detail of a serialized google.rpc.Status, in order. */
function forEachDetail(statusBytes: Uint8Array, visit: (typeUrl: string, value: Uint8Array) => void): void {
  forEachField(statusBytes, (field, reader) => {
    if (field !== 3) return false;
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array();
    forEachField(reader.bytes(), (f, r) => {
      if (f === 1) typeUrl = r.string();
      else if (f === 2) value = r.bytes();
      else return false;
      return true;
    });
    visit(typeUrl, value);
    return true;
  });
}

/** Field violations of every BadRequest detail in a serialized google.rpc.Status. */
export function fieldViolationsFromStatus(statusBytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  forEachDetail(statusBytes, (typeUrl, value) => {
    if (typeUrl === BAD_REQUEST_TYPE_URL) out.push(...decodeFieldViolations(value));
  });
  return out;
}

/**
 * The first UpsertDocumentsResponse detail (a failed UpsertDocuments stream's response so far)
 * in a serialized google.rpc.Status; undefined when there is none.
 */
export function partialUpsertFromStatus(statusBytes: Uint8Array): UpsertDocumentsResponse | undefined {
  let partial: UpsertDocumentsResponse | undefined;
  forEachDetail(statusBytes, (typeUrl, value) => {
    if (partial === undefined && typeUrl === UPSERT_RESPONSE_TYPE_URL) partial = UpsertDocumentsResponse.decode(value);
  });
  return partial;
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number" && "metadata" in error;
}

/** Converts a grpc-js ServiceError (anything else is returned unchanged). */
export function toHybridSearchError(error: unknown): unknown {
  if (!isServiceError(error)) return error;
  const violations: FieldViolation[] = [];
  let partialUpsert: UpsertDocumentsResponse | undefined;
  for (const value of error.metadata?.get(STATUS_DETAILS_KEY) ?? []) {
    if (typeof value === "string") continue;
    try {
      violations.push(...fieldViolationsFromStatus(value));
      partialUpsert ??= partialUpsertFromStatus(value);
    } catch {
      // A malformed trailer must not hide the call's own code and message.
    }
  }
  return new HybridSearchError(error.code, error.details, violations, partialUpsert);
}

/** Converts the in-band error of a SearchStream response. */
export function fromStreamError(error: ErrorStatus): HybridSearchError {
  return new HybridSearchError(error.code as status, error.message, error.fieldViolations);
}
