package api

import (
	"io"
	"unicode/utf8"
)

// logChunkSize is how much of a log is read at once when streaming it.
const logChunkSize = 32 << 10

const hexDigits = "0123456789abcdef"

// writeJSONString writes the contents of r to w as one JSON string, reading it in chunks of
// len(buf) bytes, so any amount of text is encoded in constant memory. The output is what
// encoding/json writes for the same string: invalid UTF-8 becomes \ufffd (one per bad byte),
// control characters are escaped, and so are <, >, &, U+2028 and U+2029 so the result is safe
// to embed in HTML.
func writeJSONString(w io.Writer, r io.Reader, buf []byte) error {
	// Each input byte becomes at most 6 output bytes (\u00XX; \ufffd for one bad byte), so
	// out never grows while a read is encoded: the loop stores bytes by index.
	out := make([]byte, 6*len(buf)+2)
	k := 0
	out[k] = '"'
	k++
	carry := 0 // bytes of an incomplete UTF-8 sequence kept at the start of buf
	for {
		n, rerr := r.Read(buf[carry:])
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		eof := rerr == io.EOF
		data := buf[:carry+n]
		i := 0
		for i < len(data) {
			b := data[i]
			if safeASCII[b] {
				out[k] = b
				k++
				i++
				continue
			}
			if b < utf8.RuneSelf {
				if e := asciiEscapes[b]; len(e) == 2 { // \n, \t, \" …: the common ones
					out[k], out[k+1] = e[0], e[1]
					k += 2
				} else {
					k += copy(out[k:], e)
				}
				i++
				continue
			}
			if !eof && !utf8.FullRune(data[i:]) {
				// A sequence split across reads: finish it with the next read.
				break
			}
			c, size := utf8.DecodeRune(data[i:])
			switch {
			case c == utf8.RuneError && size == 1:
				k += copy(out[k:], `\ufffd`)
			case c == '\u2028' || c == '\u2029':
				k += copy(out[k:], []byte{'\\', 'u', '2', '0', '2', hexDigits[c&0xf]})
			default:
				k += copy(out[k:], data[i:i+size])
			}
			i += size
		}
		carry = copy(buf, data[i:])
		if eof {
			out[k] = '"'
			k++
		}
		if k > 0 {
			if _, err := w.Write(out[:k]); err != nil {
				return err
			}
			k = 0
		}
		if eof {
			return nil
		}
	}
}

// safeASCII tells the ASCII bytes that encoding/json (with HTML escaping) writes as they are.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// asciiEscapes holds the escaped form of each ASCII byte that is not safe (appendEscapedASCII).
var asciiEscapes = func() (t [utf8.RuneSelf]string) {
	for c := range t {
		t[c] = string(appendEscapedASCII(nil, byte(c)))
	}
	return t
}()

// appendEscapedASCII appends one ASCII byte as encoding/json (with HTML escaping) writes it.
func appendEscapedASCII(out []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(out, '\\', b)
	case '\b':
		return append(out, '\\', 'b')
	case '\f':
		return append(out, '\\', 'f')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	case '<', '>', '&':
		return append(out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
	}
	if b < 0x20 {
		return append(out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
	}
	return append(out, b)
}
