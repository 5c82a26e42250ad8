package jobwire

import "testing"

// Each process seeds its jitter from crypto/rand: two seeds (as two processes would
// draw) differ, so clients started together do not retry at the same instants.
func TestJitterIsSeededPerProcess(t *testing.T) {
	if seed() == seed() {
		t.Fatal("two seeds are equal: jitter would be the same in every process")
	}
}
