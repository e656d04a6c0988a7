// Command bmsgw is the booking-driven building-management gateway: one
// binary whose subcommands validate mappings, inspect booking feeds, plan
// point writes and run the gateway.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	_ "time/tzdata" // IANA zones must resolve on bare machines and in containers.
)

const usage = `usage: bmsgw <command> [flags]

commands:
  validate          check the gateway config and every mapping it includes
  bookings expand   list the occurrences of an iCalendar file in a time window
  bookings list     fetch the configured booking sources and list the normalised bookings
  plan              print every point write the gateway would make, with its reason
  schema            print the JSON Schema of gateway config or mapping files
  run               run the gateway: feeds, plans, point writes, local API
  sim               run simulators for every connection of a config
  status            devices and points of the running gateway
  override set|clear   operator overrides on the running gateway
  reload            validate the config and apply it to the running gateway
  journal           what the gateway wrote, overrode and saw, from its journal
  events            access and alarm events from the journal, or live with --follow
  token new         make an HTTP API token for a holder and role (prints the hash for the config)
  round SITE        run the virtual patrol round of a site on the running gateway now
  report noshows    the booking office's no-show report per organiser (association)
  report energy     comfort hours per space per week against the old lending period, and the energy saved
  export opendata   per space per day: booked hours, hours in use, no-shows, comfort hours (no personal data)

Run 'bmsgw <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the process exit code:
// 0 success, 1 the command found problems (invalid config, failed fetch),
// 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "validate":
		return cmdValidate(ctx, args[1:], stdout, stderr)
	case "bookings":
		if len(args) < 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		switch args[1] {
		case "expand":
			return cmdBookingsExpand(ctx, args[2:], stdout, stderr)
		case "list":
			return cmdBookingsList(ctx, args[2:], stdout, stderr)
		}
	case "plan":
		return cmdPlan(ctx, args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(ctx, args[1:], stdout, stderr)
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "sim":
		return cmdSim(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "override":
		return cmdOverride(ctx, args[1:], stdout, stderr)
	case "reload":
		return cmdReload(ctx, args[1:], stdout, stderr)
	case "journal":
		return cmdJournal(ctx, args[1:], stdout, stderr)
	case "events":
		return cmdEvents(ctx, args[1:], stdout, stderr)
	case "token":
		return cmdToken(ctx, args[1:], stdout, stderr)
	case "export":
		return cmdExport(ctx, args[1:], stdout, stderr)
	case "round":
		return cmdRound(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(ctx, args[1:], stdout, stderr)
	case "uaserver": // hidden: the OPC UA server child process
		return cmdUAServer(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bmsgw: unknown command %q\n\n%s", args[0], usage)
	return 2
}
