package gateway

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends to dst the body httpapi.JSONBody makes of r, byte
// for byte (encoding/json without HTML escaping, one trailing newline),
// without reflection: TestCheckAnswerGolden and FuzzCheckAnswer hold the
// two to the same bytes. It only reads r.
func (r *CheckResponse) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"allowed":`...)
	dst = strconv.AppendBool(dst, r.Allowed)
	dst = appendField(dst, "code", r.Code, false)
	dst = appendField(dst, "key_id", r.KeyID, true)
	dst = appendField(dst, "owner_id", r.OwnerID, true)
	dst = appendField(dst, "tier", r.Tier, true)
	dst = append(dst, `,"scopes":`...)
	if r.Scopes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, s := range r.Scopes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"ratelimit":`...)
	if l := r.RateLimit; l == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"policy":`...)
		dst = appendJSONString(dst, l.Policy)
		dst = append(dst, `,"limit":`...)
		dst = strconv.AppendInt(dst, l.Limit, 10)
		dst = append(dst, `,"remaining":`...)
		dst = strconv.AppendInt(dst, l.Remaining, 10)
		dst = append(dst, `,"reset":`...)
		dst = strconv.AppendInt(dst, l.Reset, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"retry_after":`...)
	dst = strconv.AppendInt(dst, r.RetryAfter, 10)
	dst = appendField(dst, "message", r.Message, true)
	return append(dst, "}\n"...)
}

// appendField appends ,"name":"v", or nothing when omitEmpty and v is "".
func appendField(dst []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes a string
// with HTML escaping off (encode.go's appendString): \" and \\, the
// short escapes for \b \f \n \r \t, \u00XX for the other control
// characters, \ufffd for each byte of invalid UTF-8, and \u2028 and
// \u2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
