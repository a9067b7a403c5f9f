//go:build race

package chart

// raceEnabled: the test binary has the race detector, so the vigil binary
// it builds has it too (and shares its compiled packages).
const raceEnabled = true
