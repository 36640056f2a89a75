package dev.hybridsearch.client;

import dev.hybridsearch.client.HybridSearchClient.StreamResult;
import dev.hybridsearch.v1.SearchStreamRequest;
import dev.hybridsearch.v1.SearchStreamResponse;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Function;

/**
 * The answers of a {@code SearchStream}, read as they arrive (arrival order, not request order).
 *
 * <p>{@link #next()} blocks for the next answer. A failed stream (deadline, cancellation,
 * server shutdown) makes {@link #hasNext()} return true once more and {@link #next()} throw the
 * {@link HybridSearchException}, after the answers that did arrive; an exception thrown by the
 * request source is rethrown unchanged instead. Answers are requested from the server one at a
 * time as they are consumed (flow control), and requests are pulled from their iterator by a
 * daemon thread only as the transport can take them, so a request may wait for an earlier
 * answer. When the call ends (or {@link #close()} cancels it) the sender stops; a request
 * iterator blocked in {@code hasNext()}/{@code next()} is interrupted. Close the stream when
 * you stop reading early.
 *
 * <p>Not thread-safe, except {@link #close()}, which may be called from any thread.
 */
public final class ResultStream implements Iterator<StreamResult>, AutoCloseable {
  private static final Object END = new Object();

  private final BlockingQueue<Object> queue = new LinkedBlockingQueue<>(); // answer, Throwable or END
  private final Object readyLock = new Object();
  private volatile ClientCallStreamObserver<SearchStreamRequest> call;
  private volatile boolean finished; // the server ended the call, or close() cancelled it
  private volatile RuntimeException sourceError;
  private volatile Thread sender;
  private Object peeked;
  private boolean ended;

  ResultStream() {}

  /** Starts the call through {@code start} (the async stub with its deadline) and the sender. */
  static ResultStream open(
      Function<ClientResponseObserver<SearchStreamRequest, SearchStreamResponse>, ?> start,
      Iterator<SearchStreamRequest> requests) {
    ResultStream stream = new ResultStream();
    start.apply(stream.observer());
    stream.sender = new Thread(() -> stream.send(requests), "hybridsearch-search-stream");
    stream.sender.setDaemon(true);
    stream.sender.start();
    return stream;
  }

  private ClientResponseObserver<SearchStreamRequest, SearchStreamResponse> observer() {
    return new ClientResponseObserver<>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<SearchStreamRequest> requestStream) {
        call = requestStream;
        requestStream.disableAutoRequestWithInitial(1);
        requestStream.setOnReadyHandler(ResultStream.this::wakeSender);
      }

      @Override
      public void onNext(SearchStreamResponse message) {
        queue.add(
            message.hasError()
                ? new StreamResult(
                    message.getRequestId(), null, HybridSearchException.fromStreamError(message.getError()), message.getPartial())
                : new StreamResult(message.getRequestId(), message.getResponse(), null, message.getPartial()));
      }

      @Override
      public void onError(Throwable t) {
        finish();
        queue.add(t);
      }

      @Override
      public void onCompleted() {
        finish();
        queue.add(END);
      }
    };
  }

  private void wakeSender() {
    synchronized (readyLock) {
      readyLock.notifyAll();
    }
  }

  private void finish() {
    finished = true;
    wakeSender();
    stopSender();
  }

  /** Wakes the sender from a request iterator that blocks: the call is over. */
  private void stopSender() {
    Thread thread = sender;
    if (thread != null && thread.isAlive() && thread != Thread.currentThread()) {
      thread.interrupt();
    }
  }

  /** The sender thread: one request at a time, each once the transport is ready for it. */
  private void send(Iterator<SearchStreamRequest> requests) {
    try {
      while (!finished && requests.hasNext()) {
        SearchStreamRequest request = requests.next();
        synchronized (readyLock) {
          while (!finished && !call.isReady()) {
            readyLock.wait();
          }
        }
        if (finished) {
          return;
        }
        call.onNext(request);
      }
      if (!finished) {
        call.onCompleted();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt(); // close() stopped us
    } catch (RuntimeException e) {
      if (!finished) { // else the call is over (and e may just be its interruption): moot
        fail(e);
      }
    }
  }

  private void fail(RuntimeException sourceFailure) {
    sourceError = sourceFailure;
    call.cancel("the request source failed", sourceFailure);
  }

  @Override
  public boolean hasNext() {
    if (peeked == null && !ended) {
      try {
        peeked = queue.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        close();
        throw HybridSearchException.fromThrowable(e);
      }
      if (peeked == END) {
        ended = true;
        peeked = null;
      }
    }
    return peeked != null;
  }

  /** The next answer; throws the stream's failure as {@link HybridSearchException}. */
  @Override
  public StreamResult next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the stream has ended");
    }
    Object item = peeked;
    if (item instanceof Throwable failure) {
      ended = true;
      peeked = null;
      RuntimeException source = sourceError;
      throw source != null ? source : HybridSearchException.fromThrowable(failure);
    }
    peeked = null;
    call.request(1);
    return (StreamResult) item;
  }

  /** Cancels the call if it is still open (the server sees CANCELLED) and stops the sender. */
  @Override
  public void close() {
    if (!finished) {
      finished = true;
      call.cancel("closed by the client", null);
    }
    wakeSender();
    stopSender();
  }
}
