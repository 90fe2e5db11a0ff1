// Command floorserver is the floor of the start-up benchmark: a trivial Go net/http server that
// takes prunner's server flags, ignores all but --address, and answers every request with 200
// and an empty job list. The startup group measures it exec → first 200 next to prunner in the
// same run, so that the figures of a noisy machine can be compared.
package main

import (
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fs := flag.NewFlagSet("floorserver", flag.ContinueOnError)
	addr := fs.String("address", "localhost:9009", "listen address")
	for _, name := range []string{"path", "data", "jwt-secret"} {
		fs.String(name, "", "ignored")
	}
	_ = fs.Parse(os.Args[1:])
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		os.Exit(0)
	}()
	err := http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jobs":[]}`))
	}))
	if err != nil {
		os.Exit(1)
	}
}
