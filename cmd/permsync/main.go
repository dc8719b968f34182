// Command permsync serves the permsync web app and, for development, an embedded
// Kinde-compatible identity provider (devkinde).
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "permsync:", err)
		os.Exit(1)
	}
}
