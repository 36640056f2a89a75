// HybridSearchError: a failed call with its gRPC code and the google.rpc.BadRequest field
// violations the server puts in the `grpc-status-details-bin` trailer (AIP-193).
import { type ServiceError, status } from "@grpc/grpc-js";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { ErrorStatus } from "./gen/hybridsearch/v1/search.js";

export interface FieldViolation {
  field: string;
  description: string;
}

export class HybridSearchError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    readonly fieldViolations: FieldViolation[] = [],
  ) {
    const fields = fieldViolations.map((v) => ` [${v.field}: ${v.description}]`).join("");
    super(`${status[code] ?? code}: ${details}${fields}`);
    this.name = "HybridSearchError";
  }
}

const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";

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

/** Field violations of every BadRequest detail in a serialized google.rpc.Status. */
export function fieldViolationsFromStatus(statusBytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
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
    if (typeUrl === BAD_REQUEST_TYPE_URL) out.push(...decodeFieldViolations(value));
    return true;
  });
  return out;
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number" && "metadata" in error;
}

/** Converts a grpc-js ServiceError (anything else is returned unchanged). */
export function toHybridSearchError(error: unknown): unknown {
  if (!isServiceError(error)) return error;
  const violations: FieldViolation[] = [];
  for (const value of error.metadata?.get(STATUS_DETAILS_KEY) ?? []) {
    if (typeof value === "string") continue;
    try {
      violations.push(...fieldViolationsFromStatus(value));
    } catch {
      // A malformed trailer must not hide the call's own code and message.
    }
  }
  return new HybridSearchError(error.code, error.details, violations);
}

/** Converts the in-band error of a SearchStream response. */
export function fromStreamError(error: ErrorStatus): HybridSearchError {
  return new HybridSearchError(error.code as status, error.message, error.fieldViolations);
}
