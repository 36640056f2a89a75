package dev.hybridsearch.client;

import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import dev.hybridsearch.v1.ErrorStatus;
import dev.hybridsearch.v1.UpsertDocumentsResponse;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed call: the canonical gRPC code, the server's message and, for INVALID_ARGUMENT, the
 * {@code google.rpc.BadRequest} field violations (read from {@code grpc-status-details-bin}).
 * For an {@code UpsertDocuments} stream that failed part-way, {@link #partialUpsert()} is the
 * server's response so far (from the same status details).
 */
public final class HybridSearchException extends RuntimeException {
  /** One invalid request field, e.g. {@code top_k}. */
  public record FieldViolation(String field, String description) {}

  private final Status.Code code;
  private final String serverMessage;
  private final List<FieldViolation> fieldViolations;
  private final UpsertDocumentsResponse partialUpsert;

  public HybridSearchException(Status.Code code, String serverMessage, List<FieldViolation> fieldViolations, Throwable cause) {
    this(code, serverMessage, fieldViolations, null, cause);
  }

  /** {@code partialUpsert}: a failed UpsertDocuments stream's response so far, or null. */
  public HybridSearchException(
      Status.Code code, String serverMessage, List<FieldViolation> fieldViolations, UpsertDocumentsResponse partialUpsert, Throwable cause) {
    super(describe(code, serverMessage, fieldViolations), cause);
    this.code = code;
    this.serverMessage = serverMessage;
    this.fieldViolations = List.copyOf(fieldViolations);
    this.partialUpsert = partialUpsert;
  }

  public Status.Code code() {
    return code;
  }

  public String serverMessage() {
    return serverMessage;
  }

  public List<FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /**
   * For an {@code UpsertDocuments} stream that failed part-way (RESOURCE_EXHAUSTED with the
   * server at capacity, UNAVAILABLE at its graceful stop, INVALID_ARGUMENT or NOT_FOUND at a
   * later message, ...), the server's response so far: {@code getAppliedMessages()} says how
   * many messages were applied (the first N; the rest were not: send those again on a new
   * stream), with their counts ({@code getRejectedCount2()} counts the rejections),
   * rejections ({@code getRejected3List()}) and generation. Null when the status carries none.
   */
  public UpsertDocumentsResponse partialUpsert() {
    return partialUpsert;
  }

  private static String describe(Status.Code code, String message, List<FieldViolation> violations) {
    StringBuilder text = new StringBuilder(code + ": " + message);
    for (FieldViolation v : violations) {
      text.append(" [").append(v.field()).append(": ").append(v.description()).append(']');
    }
    return text.toString();
  }

  /**
   * Converts a failed call; the rich status, when present, supplies the field violations and
   * a failed upsert stream's partial response.
   */
  public static HybridSearchException fromThrowable(Throwable error) {
    Status status = Status.fromThrowable(error);
    List<FieldViolation> violations = new ArrayList<>();
    UpsertDocumentsResponse partialUpsert = null;
    com.google.rpc.Status rich = StatusProto.fromThrowable(error);
    if (rich != null) {
      for (com.google.protobuf.Any detail : rich.getDetailsList()) {
        try {
          if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (partialUpsert == null && detail.is(UpsertDocumentsResponse.class)) {
            partialUpsert = detail.unpack(UpsertDocumentsResponse.class);
          }
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          // A malformed detail must not hide the call's own code and message.
        }
      }
    }
    String message = status.getDescription() == null ? "" : status.getDescription();
    return new HybridSearchException(status.getCode(), message, violations, partialUpsert, error);
  }

  /** Converts the in-band error of a SearchStream response. */
  public static HybridSearchException fromStreamError(ErrorStatus error) {
    List<FieldViolation> violations = new ArrayList<>();
    for (dev.hybridsearch.v1.FieldViolation v : error.getFieldViolationsList()) {
      violations.add(new FieldViolation(v.getField(), v.getDescription()));
    }
    return new HybridSearchException(Status.fromCodeValue(error.getCode()).getCode(), error.getMessage(), violations, null);
  }
}
