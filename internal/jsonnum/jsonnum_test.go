package jsonnum

import (
	"encoding/json"
	"testing"
)

// grammar is the JSON number grammar case by case: each part (sign, integer, fraction,
// exponent) present and absent, and each way to get a part wrong.
var grammar = []struct {
	s    string
	want bool
}{
	// integer part
	{"0", true},
	{"7", true},
	{"10", true},
	{"123456789012345678901234567890", true},
	{"-0", true},
	{"-42", true},
	{"", false},
	{"-", false},
	{"+1", false},
	{"--1", false},
	{"01", false},
	{"-01", false},
	{"00", false},
	// fraction
	{"0.5", true},
	{"1.25", true},
	{"-0.0", true},
	{"1.", false},
	{".5", false},
	{"-.5", false},
	{"1.5.5", false},
	{"1.e5", false},
	// exponent
	{"1e5", true},
	{"1E5", true},
	{"1e+5", true},
	{"1e-5", true},
	{"0e0", true},
	{"1.5e10", true},
	{"-1.5E-007", true},
	{"1e", false},
	{"1e+", false},
	{"1e-", false},
	{"e5", false},
	{"1e5e5", false},
	{"1e5.5", false},
	// what other languages accept as numbers
	{"0x10", false},
	{"1_000", false},
	{"Infinity", false},
	{"NaN", false},
	{"١", false}, // an Arabic-Indic digit
	// nothing around the number
	{" 1", false},
	{"1 ", false},
	{"1\n", false},
	{"1,", false},
	{"\"1\"", false},
}

func TestValid(t *testing.T) {
	t.Parallel()
	for _, tt := range grammar {
		if got := Valid(tt.s); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// FuzzValid holds Valid to encoding/json: a text is a JSON number when encoding/json accepts it
// as a JSON value that starts like a number and ends with a digit (no surrounding space).
func FuzzValid(f *testing.F) {
	for _, tt := range grammar {
		f.Add(tt.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s != "" && (s[0] == '-' || isDigit(s[0])) && isDigit(s[len(s)-1]) && json.Valid([]byte(s))
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v (encoding/json)", s, got, want)
		}
	})
}
