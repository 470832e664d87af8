package loopedge

import (
	"bytes"
	"strconv"
)

// A chunked upstream answer is relayed chunk by chunk as it arrives: each
// chunk's size line is written again without extensions, its data
// copied, and of the trailer section the fields whose names were
// announced to the client (answerHead.trailers), as api/fastedge relays
// them. An answer framed by the upstream's close is relayed chunked too,
// each read a chunk, and ended when the upstream's connection closes
// (exchange.go's endByClose), as api/fastedge and net/http relay it to an
// HTTP/1.1 client.

// The states of a chunked answer's relay.
type chunkState int

const (
	chunkSize     chunkState = iota // awaiting a size line
	chunkData                       // copying a chunk's data (exchange.left bytes)
	chunkDataEnd                    // awaiting the CRLF after a chunk's data
	chunkTrailers                   // relaying announced trailer lines until the empty one
)

// maxChunkLine is the longest size or trailer line the relay reads.
const maxChunkLine = 4096

// relayChunks moves the chunked body in upstream.in to client.out as far
// as it is there: done once the last chunk and the trailers were read;
// errBadAnswer for framing it cannot read.
func (l *loop) relayChunks(p *pair) (done bool, err error) {
	ex := &p.ex
	in := &p.upstream.in
	for {
		switch ex.chunks {
		case chunkData:
			ex.bytes += moveBody(in, &p.client.out, &ex.left)
			if ex.left > 0 {
				return false, nil
			}
			ex.chunks = chunkDataEnd
		case chunkDataEnd:
			if len(*in) < 2 {
				return false, nil
			}
			if (*in)[0] != '\r' || (*in)[1] != '\n' {
				return false, errBadAnswer
			}
			consume(in, 2)
			p.client.out = append(p.client.out, "\r\n"...)
			ex.chunks = chunkSize
		case chunkSize, chunkTrailers:
			line, ok, err := chunkLine(*in)
			if !ok || err != nil {
				return false, err
			}
			if ex.chunks == chunkTrailers {
				p.client.out = ex.answer.appendTrailer(p.client.out, line)
				consume(in, len(line)+2)
				if len(line) == 0 {
					return true, nil
				}
				continue
			}
			size, err := chunkSizeOf(line) // before consume moves line's bytes
			if err != nil {
				return false, err
			}
			consume(in, len(line)+2)
			if size == 0 {
				p.client.out = append(p.client.out, "0\r\n"...)
				ex.chunks = chunkTrailers
				continue
			}
			p.client.out = append(strconv.AppendInt(p.client.out, size, 16), "\r\n"...)
			ex.left, ex.chunks = size, chunkData
		}
	}
}

// chunkLine returns the line at the start of in without its CRLF; ok is
// false while it is incomplete.
func chunkLine(in []byte) (line []byte, ok bool, err error) {
	i := bytes.Index(in[:min(len(in), maxChunkLine)], []byte("\r\n"))
	switch {
	case i >= 0:
		return in[:i], true, nil
	case len(in) >= maxChunkLine:
		return nil, false, errBadAnswer
	}
	return nil, false, nil
}

// chunkSizeOf parses a chunk size line: hex digits, then extensions,
// which are ignored.
func chunkSizeOf(line []byte) (int64, error) {
	digits, _, _ := bytes.Cut(line, []byte(";"))
	digits = trimOWS(digits)
	if len(digits) == 0 || len(digits) > 15 {
		return 0, errBadAnswer
	}
	n, err := strconv.ParseInt(string(digits), 16, 64)
	if err != nil || n < 0 {
		return 0, errBadAnswer
	}
	return n, nil
}

// appendTrailer appends a trailer section's line to out when its field
// was announced to the client, or the section's end for the empty line;
// a field not announced, or one that does not parse, is dropped.
func (a *answerHead) appendTrailer(out, line []byte) []byte {
	if len(line) == 0 {
		return append(out, "\r\n"...)
	}
	if f, ok := headerLine(line); ok && hasToken(a.trailers, b2s(f.name)) {
		out = appendHeader(out, b2s(f.name), b2s(f.value))
	}
	return out
}

// relayUntilClose moves what upstream.in holds of an answer framed by
// the upstream's close to client.out as one chunk.
func (l *loop) relayUntilClose(p *pair) {
	in := &p.upstream.in
	if len(*in) == 0 {
		return
	}
	out := strconv.AppendInt(p.client.out, int64(len(*in)), 16)
	out = append(append(append(out, "\r\n"...), *in...), "\r\n"...)
	p.client.out = out
	p.ex.bytes += int64(len(*in))
	*in = (*in)[:0]
}
