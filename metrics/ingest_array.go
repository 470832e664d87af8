package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// arrayReader reads the elements of a JSON array from a stream one at a
// time, so that a batch costs memory bounded by the caps of one record,
// not by the body: it keeps at most MaxEventLineBytes of an element and
// never more than MaxEventFieldBytes of one of its strings or numbers. An
// element over a cap is still read to its end (its structure decides
// where that is) but not kept, and is refused on its own.
//
// It follows only the structure (strings, escapes, nesting); whether a
// kept element is valid JSON is for the decoder to say.
type arrayReader struct {
	br   *bufio.Reader
	elem []byte // the element being read, while it is kept
	name []byte // the top-level field name last read, for messages
	keep bool   // elem is within MaxEventLineBytes
	over error  // the first cap the element broke
}

// maxFieldNameInMessage bounds a field name quoted in an error message.
const maxFieldNameInMessage = 64

// errCutOff is the problem with a body that ends inside the array.
var errCutOff = fmt.Errorf("%w: the array is cut off", ErrMalformedEvents)

// open reads the array's '[' and reports whether any element follows.
func (a *arrayReader) open() (more bool, err error) {
	if c, err := a.br.ReadByte(); err != nil || c != '[' {
		return false, fmt.Errorf("%w: want '['", ErrMalformedEvents)
	}
	c, err := a.nextNonSpace()
	if err != nil {
		return false, err
	}
	if c == ']' {
		return false, nil
	}
	return true, a.br.UnreadByte()
}

// separator reads what follows an element: ',' (more is true) or the
// closing ']'.
func (a *arrayReader) separator(index int) (more bool, err error) {
	c, err := a.nextNonSpace()
	switch {
	case err != nil:
		return false, err
	case c == ',':
		return true, nil
	case c == ']':
		return false, nil
	}
	return false, fmt.Errorf("%w: after element %d: want ',' or ']', got %q", ErrMalformedEvents, index, c)
}

// close checks that only white space follows the array.
func (a *arrayReader) close() error {
	for {
		c, err := a.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		if !isJSONSpace(c) {
			return fmt.Errorf("%w: data after the array", ErrMalformedEvents)
		}
	}
}

func (a *arrayReader) nextNonSpace() (byte, error) {
	c, _, err := a.nextNonSpaceFrom()
	return c, err
}

// nextNonSpaceFrom reads the next byte that is not white space; spaced
// says white space came before it.
func (a *arrayReader) nextNonSpaceFrom() (c byte, spaced bool, err error) {
	for {
		c, err := a.br.ReadByte()
		if err == io.EOF {
			return 0, spaced, errCutOff
		}
		if err != nil {
			return 0, spaced, fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		if !isJSONSpace(c) {
			return c, spaced, nil
		}
		spaced = true
	}
}

// element reads the next element. raw holds its bytes, valid until the
// next call, unless the element broke a cap: then raw is nil and problem
// says which. err is ErrMalformedEvents for a body that ends inside the
// element or has no element where one must be.
func (a *arrayReader) element() (raw []byte, problem error, err error) {
	a.elem, a.name, a.keep, a.over = a.elem[:0], a.name[:0], true, nil
	depth := 0
	// Only fields of the element's own object are named in messages:
	// expectName says the next string at depth 1 is a field name.
	object, expectName := false, false
	for {
		c, spaced, err := a.nextNonSpaceFrom()
		if err != nil {
			return nil, nil, err
		}
		if depth == 0 && (c == ',' || c == ']' || c == '}' || c == ':') {
			return nil, nil, fmt.Errorf("%w: want an element, got %q", ErrMalformedEvents, c)
		}
		if spaced && depth > 0 {
			// One space stands for the run: it keeps "2 0" two tokens.
			a.put(' ')
		}
		a.put(c)
		switch c {
		case '{', '[':
			if depth == 0 {
				object = c == '{'
				expectName = object
			}
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 1 {
				expectName = false
			}
		case ',':
			if depth == 1 {
				expectName = object
			}
		case '"':
			isName := depth == 1 && expectName
			if err := a.string(isName, depth); err != nil {
				return nil, nil, err
			}
		default:
			if err := a.scalar(depth); err != nil {
				return nil, nil, err
			}
		}
		if depth <= 0 {
			break
		}
	}
	if a.over != nil {
		return nil, a.over, nil
	}
	return a.elem, nil, nil
}

// put appends b to the element while it is within MaxEventLineBytes.
func (a *arrayReader) put(b ...byte) {
	if !a.keep {
		return
	}
	if len(a.elem)+len(b) > MaxEventLineBytes {
		a.keep, a.elem = false, a.elem[:0]
		a.broke(fmt.Errorf("record is longer than %d bytes", MaxEventLineBytes))
		return
	}
	a.elem = append(a.elem, b...)
}

// broke notes the first cap the element broke.
func (a *arrayReader) broke(problem error) {
	if a.over == nil {
		a.over = problem
	}
}

// fieldTooLong notes a string or number over MaxEventFieldBytes.
func (a *arrayReader) fieldTooLong(isName bool, depth int) {
	if a.over != nil {
		return
	}
	switch {
	case isName:
		a.broke(fmt.Errorf("a field name is longer than %d bytes", MaxEventFieldBytes))
	case depth == 1 && len(a.name) > 0:
		a.broke(fmt.Errorf("%s is longer than %d bytes", a.name, MaxEventFieldBytes))
	default:
		a.broke(fmt.Errorf("a value is longer than %d bytes", MaxEventFieldBytes))
	}
}

// string reads the rest of a string whose opening quote was read, up to
// and including its closing quote, in chunks of the reader's buffer.
func (a *arrayReader) string(isName bool, depth int) error {
	if isName {
		a.name = a.name[:0]
	}
	n := 0           // bytes of the string so far, escapes as written
	backslashes := 0 // the run of backslashes just read
	for {
		chunk, err := a.br.ReadSlice('"')
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return errCutOff
		default:
			return fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		content := chunk
		if err == nil {
			content = chunk[:len(chunk)-1]
		}
		if n += len(content); n > MaxEventFieldBytes {
			a.fieldTooLong(isName, depth)
		}
		a.put(chunk...)
		if isName && len(a.name) < maxFieldNameInMessage {
			a.name = append(a.name, content[:min(len(content), maxFieldNameInMessage-len(a.name))]...)
		}
		trailing := len(content) - len(bytes.TrimRight(content, `\`))
		if trailing == len(content) {
			backslashes += trailing
		} else {
			backslashes = trailing
		}
		if err == nil {
			if backslashes%2 == 0 { // the quote is not escaped: the string ends
				return nil
			}
			backslashes = 0
		}
	}
}

// scalar reads the rest of a number or literal whose first byte was read:
// up to the next white space or structural byte, which is left unread.
func (a *arrayReader) scalar(depth int) error {
	n := 1
	for {
		buffered, err := a.br.Peek(max(a.br.Buffered(), 1))
		if err == io.EOF {
			return errCutOff
		}
		if err != nil {
			return fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		end := bytes.IndexAny(buffered, " \t\r\n,:]}\"[{")
		if end < 0 {
			end = len(buffered)
		}
		if n += end; n > MaxEventFieldBytes {
			a.fieldTooLong(false, depth)
		}
		a.put(buffered[:end]...)
		_, _ = a.br.Discard(end)
		if end < len(buffered) {
			return nil
		}
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
