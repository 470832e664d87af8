package fastedge

// statusCode follows the first line of an upstream's head to its status
// code, as fasthttp's ResponseHeader reads it (parseFirstLine): empty
// lines before it skipped, the protocol up to the first space, spaces,
// then three digits. Its zero value starts a head. A line fasthttp
// refuses fails the request whatever statusCode makes of it.
type statusCode struct {
	phase  codePhase
	digits int // read so far, up to 3
	value  int
}

type codePhase uint8

const (
	codeLineStart codePhase = iota // no byte of the first line yet
	codeProto                      // in the protocol
	codeSpaces                     // after it
	codeDigits                     // in the code
	codeDone                       // past it, or the line ended without one
)

// read follows b, read after what came before; past the code it reads
// nothing, so b may run on into the rest of the head and beyond.
func (s *statusCode) read(b []byte) {
	for i := 0; i < len(b) && s.phase != codeDone; i++ {
		x := b[i]
		switch s.phase {
		case codeLineStart:
			if x != '\r' && x != '\n' {
				s.phase = codeProto
			}
		case codeProto:
			switch x {
			case ' ':
				s.phase = codeSpaces
			case '\n':
				s.phase = codeDone
			}
		case codeSpaces:
			if x == ' ' {
				continue
			}
			s.phase = codeDone
			if '0' <= x && x <= '9' {
				s.phase, s.digits, s.value = codeDigits, 1, int(x-'0')
			}
		case codeDigits:
			if '0' <= x && x <= '9' && s.digits < 3 {
				s.digits++
				s.value = 10*s.value + int(x-'0')
			} else {
				s.phase = codeDone
			}
		}
	}
}

// final says whether the head whose end headEnd found is the final one,
// which fasthttp reads the body after (Response.ReadLimitBody): one with
// a first line (fasthttp skips empty lines before it) whose code is not
// an interim one, 1xx but 101 Switching Protocols.
func (s *statusCode) final() bool {
	interim := s.digits == 3 && s.value >= 100 && s.value <= 199 && s.value != 101
	return s.phase != codeLineStart && !interim
}
