// Command cdw keeps a customer data warehouse up to date: it extracts orders,
// tickets and contacts into raw Parquet, builds customer marts with DuckDB SQL
// models, and publishes them for BI tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/cdwhq/cdw/internal/memtrim"
	"github.com/cdwhq/cdw/internal/secret"
)

// command is one subcommand: its flags are defined in setup, and run does the work.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the command name
	setup   func(fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cdw: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	memtrim.Tune() // before DuckDB allocates
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	out, errOut = stdout, stderr
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cdw: unknown command %q (run 'cdw --help' for the list)\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("cdw "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	action := cmd.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cdw %s [flags] %s\n\n%s\n\nFlags:\n", cmd.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := setupLogging(stderr, *logLevel, *logFormat); err != nil {
		fmt.Fprintf(stderr, "cdw: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := action(ctx, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "cdw %s: %s\n", cmd.name, oneLine(err))
		return 1
	}
	return 0
}

var out, errOut io.Writer = os.Stdout, os.Stderr

func setupLogging(w io.Writer, level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		slog.SetDefault(slog.New(secret.Handler(slog.NewTextHandler(w, opts))))
	case "json":
		slog.SetDefault(slog.New(secret.Handler(slog.NewJSONHandler(w, opts))))
	default:
		return fmt.Errorf("--log-format: %q is not text or json", format)
	}
	return nil
}

// oneLine folds a (possibly joined) error into one line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(secret.Scrub(err.Error()), "\n", "; ")), " ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "cdw keeps a customer data warehouse up to date.\n\nUsage: cdw <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'cdw <command> --help' for a command's flags.")
}
