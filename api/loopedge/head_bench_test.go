package loopedge

import "testing"

// benchHead is a proxied request as wrk sends it in
// docs/bench/evloop-ab.sh, plus a browser's usual headers.
const benchHead = "GET /bench?page=2 HTTP/1.1\r\nHost: 127.0.0.1:21120\r\nX-API-Key: wsk_0123456789abcdef\r\n" +
	"Authorization: Bearer wsk_0123456789abcdef\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n" +
	"Accept-Encoding: gzip, deflate\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n"

// benchAnswer is the benchmark upstream's answer head.
const benchAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 19:00:00 GMT\r\n" +
	"Content-Length: 27\r\n\r\n"

// BenchmarkParseHead is the strict parser over a request head: its cost
// a request on the loop, names made canonical included.
func BenchmarkParseHead(b *testing.B) {
	b.ReportAllocs()
	head := []byte(benchHead)
	buf := make([]byte, len(head))
	var h requestHead
	for b.Loop() {
		copy(buf, head)
		if err := parseHead(buf, &h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAnswer is the upstream answer head's parse.
func BenchmarkParseAnswer(b *testing.B) {
	b.ReportAllocs()
	head := []byte(benchAnswer)
	buf := make([]byte, len(head))
	var a answerHead
	for b.Loop() {
		copy(buf, head)
		if err := parseAnswer(buf, false, &a); err != nil {
			b.Fatal(err)
		}
	}
}
