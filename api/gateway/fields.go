package gateway

import "net/http"

// A Field is one header field the gateway sets on a proxied request or
// its answer: a canonical name and its value.
type Field struct {
	Name, Value string
}

// Fields is the list of header fields the gateway sets on one side of a
// request on the lean proxy (DecideProxy, ProxyCall.Failed): the answer's
// own, or those the upstream is told. Names are canonical and each is in
// the list once (setting a name again replaces its value, as assigning
// an http.Header entry does); the list keeps the order they were first
// set in. A server reads it with List and Has, in place of the
// http.Header maps net/http's path fills: a list of a dozen fields is
// read, searched and emptied for less than a map costs
// (docs/BENCHMARKS.md, "apiwarden above its floor, third pass").
//
// The zero value is an empty list. Reset empties it and keeps its room,
// so a list kept from one request to the next allocates nothing once it
// has held one request's fields. One goroutine uses it at a time.
type Fields struct {
	list []Field
}

// List is the fields in the order they were set, valid until the list
// next changes.
func (f *Fields) List() []Field { return f.list }

// Has reports whether the list holds a field of that (canonical) name.
func (f *Fields) Has(name string) bool {
	return f.index(name) >= 0
}

// Remove takes the field of that (canonical) name out of the list, if
// it is there, keeping the others' order.
func (f *Fields) Remove(name string) {
	i := f.index(name)
	if i < 0 {
		return
	}
	n := len(f.list)
	copy(f.list[i:], f.list[i+1:])
	f.list[n-1] = Field{} // let go of its strings
	f.list = f.list[:n-1]
}

// Reset empties the list, keeping its room. The values it held may be a
// ProxyCall's: a server resets its lists before the call ends.
func (f *Fields) Reset() {
	clear(f.list)
	f.list = f.list[:0]
}

// Set sets the field name (canonical) to the one value v, replacing
// the field's value when it is in the list already.
func (f *Fields) Set(name, v string) {
	if i := f.index(name); i >= 0 {
		f.list[i].Value = v
		return
	}
	f.list = append(f.list, Field{Name: name, Value: v})
}

// setHeader is Set, for the gateway's setters (headerSink); a list
// keeps its values itself, not in hv.
func (f *Fields) setHeader(_ *headerValues, name, v string) { f.Set(name, v) }

// setMap sets every header of h in the list, each replacing a field of
// its name as assigning h's entry would.
func (f *Fields) setMap(h http.Header) {
	for name, values := range h {
		f.Remove(name)
		for _, v := range values {
			f.list = append(f.list, Field{Name: name, Value: v})
		}
	}
}

// AppendLines appends the fields to dst as header lines ("Name: value"
// and CRLF each), in the list's order, with every CR and LF in a name or
// value a space, so no field can end its line early, as fasthttp's Add
// does. A server writing its own head appends them so; fasthttp's Add
// would copy each name and check its bytes, copy each value and scan it
// (~0.1 µs a field, docs/BENCHMARKS.md, "apiwarden above its floor,
// third pass"). The gateway sets no framing header (Content-Length,
// Transfer-Encoding) in a list.
func (f *Fields) AppendLines(dst []byte) []byte {
	for _, fd := range f.list {
		dst = appendNoNewLines(dst, fd.Name)
		dst = append(dst, ':', ' ')
		dst = append(appendNoNewLines(dst, fd.Value), '\r', '\n')
	}
	return dst
}

// appendNoNewLines appends s with every CR and LF in it a space.
func appendNoNewLines(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, s...)
	for i, c := range dst[start:] {
		if c == '\r' || c == '\n' {
			dst[start+i] = ' '
		}
	}
	return dst
}

func (f *Fields) index(name string) int {
	for i := range f.list {
		if f.list[i].Name == name {
			return i
		}
	}
	return -1
}

// headerSink is where the gateway's header setters (setLimitValues,
// setIdentityHeaders) write one side of a request's headers: the lean
// proxy's Fields, or a net/http header map (headerMap) whose entries are
// slices of hv's.
type headerSink interface {
	setHeader(hv *headerValues, name, value string)
}

// headerMap is a net/http header map as a headerSink.
type headerMap http.Header

func (h headerMap) setHeader(hv *headerValues, name, v string) { hv.set(http.Header(h), name, v) }
