package api

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"testing/iotest"
)

func encodeStreaming(t testing.TB, s []byte, bufSize int, oneByte bool) []byte {
	t.Helper()
	var out bytes.Buffer
	var r = bytes.NewReader(s)
	var src interface{ Read([]byte) (int, error) } = r
	if oneByte {
		src = iotest.OneByteReader(r)
	}
	if err := writeJSONString(&out, src, make([]byte, bufSize)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func checkLikeEncodingJSON(t testing.TB, s []byte) {
	t.Helper()
	want, err := json.Marshal(string(s))
	if err != nil {
		t.Fatal(err)
	}
	// Buffers of 4 and more bytes hold any UTF-8 sequence; small ones force carries across
	// reads, and one-byte reads split every sequence.
	for _, size := range []int{4, 5, 7, 64, logChunkSize} {
		for _, oneByte := range []bool{false, true} {
			got := encodeStreaming(t, s, size, oneByte)
			if !bytes.Equal(got, want) {
				t.Fatalf("writeJSONString(%q) with buffer %d (one-byte reads %v) =\n%q\nwant\n%q", s, size, oneByte, got, want)
			}
		}
	}
}

var jsonStringSeeds = []string{
	"",
	"plain ascii",
	"\"quotes\" and \\backslashes\\",
	"<html> & </html>",
	"\x00\x01\x02\x1f\x7f\b\f\n\r\t",
	"ü€🎉日本",
	"\xff\xfe\xfd",
	"trailing cut \xe2\x82",
	"\xc3",
	"\xed\xa0\x80 surrogate half",
	"\xf4\x90\x80\x80 above max",
	"\xc0\xaf overlong",
	"\u2028\u2029",
	"a\xe2\x80\xa8b",
}

func TestWriteJSONStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range jsonStringSeeds {
		checkLikeEncodingJSON(t, []byte(s))
	}
	// Every single byte value, alone and between multi-byte characters.
	for b := 0; b < 256; b++ {
		checkLikeEncodingJSON(t, []byte{byte(b)})
		checkLikeEncodingJSON(t, []byte{'\xc3', '\xbc', byte(b), '\xe2', '\x82', '\xac'})
	}
}

func FuzzWriteJSONString(f *testing.F) {
	for _, s := range jsonStringSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		checkLikeEncodingJSON(t, s)
	})
}

// BenchmarkWriteJSONStringYes encodes the output of `yes` (every other byte escaped), the worst
// case of plain text.
func BenchmarkWriteJSONStringYes(b *testing.B) {
	data := bytes.Repeat([]byte("y\n"), 4<<20)
	buf := make([]byte, logChunkSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := writeJSONString(io.Discard, bytes.NewReader(data), buf); err != nil {
			b.Fatal(err)
		}
	}
}
