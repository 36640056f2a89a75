package client

import (
	"strings"

	pb "github.com/hybridsearch/hybridsearch/clients/go/hybridsearchv1"
)

// Highlights asks for highlights on every hit (SearchRequest.Highlight): each hit gets a
// *pb.Highlight per stored field (title, then text) holding a query term. maxChars is the
// longest snippet in characters, 20 to 2000; 0 means the server default (200).
func Highlights(maxChars uint32) *pb.HighlightOptions {
	o := &pb.HighlightOptions{Enabled: true}
	if maxChars > 0 {
		o.MaxChars = &maxChars
	}
	return o
}

// MatchedTerms returns the text of each match span of h, in order. The spans count Unicode
// code points, not bytes; spans outside the snippet are clipped.
func MatchedTerms(h *pb.Highlight) []string {
	runes := []rune(h.GetSnippet())
	out := make([]string, 0, len(h.GetMatches()))
	for _, m := range h.GetMatches() {
		start, end := clip(m, len(runes))
		out = append(out, string(runes[start:end]))
	}
	return out
}

// MarkMatches returns h's snippet with every match wrapped in open and close, e.g.
// MarkMatches(h, "[", "]") or MarkMatches(h, "<em>", "</em>") (escape the snippet yourself
// for HTML). Spans count Unicode code points.
func MarkMatches(h *pb.Highlight, open, close string) string {
	runes := []rune(h.GetSnippet())
	var b strings.Builder
	at := 0
	for _, m := range h.GetMatches() {
		start, end := clip(m, len(runes))
		if start < at { // overlapping or out of order: the server sends neither
			continue
		}
		b.WriteString(string(runes[at:start]))
		b.WriteString(open)
		b.WriteString(string(runes[start:end]))
		b.WriteString(close)
		at = end
	}
	b.WriteString(string(runes[at:]))
	return b.String()
}

func clip(m *pb.TextSpan, n int) (int, int) {
	start, end := min(int(m.GetStart()), n), min(int(m.GetEnd()), n)
	return start, max(start, end)
}
