package dev.hybridsearch.client;

import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import dev.hybridsearch.v1.ErrorStatus;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed call: the canonical gRPC code, the server's message and, for INVALID_ARGUMENT, the
 * {@code google.rpc.BadRequest} field violations (read from {@code grpc-status-details-bin}).
 */
public final class HybridSearchException extends RuntimeException {
  /** One invalid request field, e.g. {@code top_k}. */
  public record FieldViolation(String field, String description) {}

  private final Status.Code code;
  private final String serverMessage;
  private final List<FieldViolation> fieldViolations;

  public HybridSearchException(Status.Code code, String serverMessage, List<FieldViolation> fieldViolations, Throwable cause) {
    super(describe(code, serverMessage, fieldViolations), cause);
    this.code = code;
    this.serverMessage = serverMessage;
    this.fieldViolations = List.copyOf(fieldViolations);
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

  private static String describe(Status.Code code, String message, List<FieldViolation> violations) {
    StringBuilder text = new StringBuilder(code + ": " + message);
    for (FieldViolation v : violations) {
      text.append(" [").append(v.field()).append(": ").append(v.description()).append(']');
    }
    return text.toString();
  }

  /** Converts a failed call; the rich status, when present, supplies the field violations. */
  public static HybridSearchException fromThrowable(Throwable error) {
    Status status = Status.fromThrowable(error);
    List<FieldViolation> violations = new ArrayList<>();
    com.google.rpc.Status rich = StatusProto.fromThrowable(error);
    if (rich != null) {
      for (com.google.protobuf.Any detail : rich.getDetailsList()) {
        if (!detail.is(BadRequest.class)) {
          continue;
        }
        try {
          for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
            violations.add(new FieldViolation(v.getField(), v.getDescription()));
          }
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          // A malformed detail must not hide the call's own code and message.
        }
      }
    }
    String message = status.getDescription() == null ? "" : status.getDescription();
    return new HybridSearchException(status.getCode(), message, violations, error);
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
