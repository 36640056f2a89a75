package dev.hybridsearch.client;

import dev.hybridsearch.v1.Highlight;
import dev.hybridsearch.v1.HighlightOptions;
import dev.hybridsearch.v1.TextSpan;
import java.util.ArrayList;
import java.util.List;

/**
 * Highlight options ({@code SearchRequest.highlight}) and readers of the {@link Highlight}s each
 * hit then carries ({@code Hit.getHighlightsList()}: field, snippet, match spans). The spans
 * count Unicode code points, not Java {@code char}s; these helpers convert.
 */
public final class Highlights {
  private Highlights() {}

  /** Highlights on, snippets of the server's default length (200 characters). */
  public static HighlightOptions enabled() {
    return HighlightOptions.newBuilder().setEnabled(true).build();
  }

  /** Highlights on, snippets of at most {@code maxChars} characters (20 to 2000). */
  public static HighlightOptions enabled(int maxChars) {
    return HighlightOptions.newBuilder().setEnabled(true).setMaxChars(maxChars).build();
  }

  /** The matched text of each span of {@code highlight}, in order (spans are clipped to the snippet). */
  public static List<String> matchedTerms(Highlight highlight) {
    String snippet = highlight.getSnippet();
    int length = snippet.codePointCount(0, snippet.length());
    List<String> terms = new ArrayList<>();
    for (TextSpan span : highlight.getMatchesList()) {
      int start = Math.min(span.getStart(), length);
      int end = Math.max(start, Math.min(span.getEnd(), length));
      terms.add(snippet.substring(snippet.offsetByCodePoints(0, start), snippet.offsetByCodePoints(0, end)));
    }
    return terms;
  }

  /**
   * The snippet with every match wrapped in {@code open} and {@code close}, e.g.
   * {@code mark(h, "[", "]")} or {@code mark(h, "<em>", "</em>")} (escape the snippet yourself
   * for HTML).
   */
  public static String mark(Highlight highlight, String open, String close) {
    String snippet = highlight.getSnippet();
    int length = snippet.codePointCount(0, snippet.length());
    StringBuilder out = new StringBuilder();
    int at = 0; // in code points
    for (TextSpan span : highlight.getMatchesList()) {
      int start = Math.min(span.getStart(), length);
      int end = Math.max(start, Math.min(span.getEnd(), length));
      if (start < at) { // overlapping or out of order: the server sends neither
        continue;
      }
      int from = snippet.offsetByCodePoints(0, at);
      int s = snippet.offsetByCodePoints(0, start);
      int e = snippet.offsetByCodePoints(0, end);
      out.append(snippet, from, s).append(open).append(snippet, s, e).append(close);
      at = end;
    }
    return out.append(snippet, snippet.offsetByCodePoints(0, at), snippet.length()).toString();
  }
}
