package config

import (
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// The types in this file are the YAML files as integrators write them.
// Their field comments are user documentation: the JSON Schema that
// editors show is generated from them (see schema.go).

// GatewayFile is the gateway configuration (configs/*.yaml).
type GatewayFile struct {
	// Directory where the gateway keeps its state (last good booking feeds). Relative paths are relative to this file. Default: "var" beside this file.
	StateDir string `yaml:"state_dir,omitempty"`
	// Default IANA time zone for booking feeds whose times carry no zone (CSV and JSON local times, iCalendar floating times). Default: Europe/Copenhagen.
	TimeZone *TimeZone `yaml:"time_zone,omitempty"`
	// Glob patterns of device template files, relative to this file.
	Templates []string `yaml:"templates,omitempty"`
	// Site mapping files (glob patterns allowed), relative to this file.
	Sites []string `yaml:"sites" jsonschema:"required"`
	// Booking sources (feeds of the central booking system).
	Sources []Source `yaml:"sources,omitempty"`
	// Where access rights derived from bookings go: access-control system APIs and export files.
	AccessOutputs []AccessOutput `yaml:"access_outputs,omitempty"`
	// Journal retention.
	Journal *JournalSettings `yaml:"journal,omitempty"`
	// The gateway's OPC UA server for BMS vendors' head-ends.
	OPCUAServer *OPCUAServer `yaml:"opcua_server,omitempty"`
	// The HTTP API and web page for energy staff and operators.
	HTTP *HTTPServer `yaml:"http,omitempty"`
	// Simulators for demos and tests; never set this for real buildings.
	Simulate *Simulate `yaml:"simulate,omitempty"`
}

// Simulate starts simulated devices and a simulated booking system inside
// the gateway, so that the demo runs on a machine with nothing else.
type Simulate struct {
	// Start a simulator for every OPC UA and Modbus TCP connection of every site, on the loopback address the connection names.
	Devices bool `yaml:"devices,omitempty"`
	// Loopback host:port of a simulated booking system: GET /<source id>.ics serves the reference evening of DOMAIN.md placed relative to the gateway's start, so a window opens within minutes.
	BookingSystem string `yaml:"booking_system,omitempty"`
	// Loopback host:port of a simulated access-control system: a JSON grants API at /api/grants (one permission per group and door at a time) that access outputs can push to; GET /api/grants lists what it holds.
	AccessSystem string `yaml:"access_system,omitempty"`
}

// Source is one booking feed. Exactly one of ical, csv and json is set.
type Source struct {
	// Unique id of the source, referred to by site mappings (lower case letters, digits, - and _).
	ID string `yaml:"id" jsonschema:"required"`
	// An iCalendar (RFC 5545) feed.
	ICal *ICalSource `yaml:"ical,omitempty"`
	// A CSV file with a header row.
	CSV *TableSource `yaml:"csv,omitempty"`
	// A JSON array of booking objects.
	JSON *TableSource `yaml:"json,omitempty"`
	// How often an http(s) feed is fetched. Default: 5m.
	PollInterval time.Duration `yaml:"poll_interval,omitempty"`
	// Timeout of one fetch. Default: 30s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// A booking missing from this many consecutive good polls counts as cancelled. Default: 3.
	MissingPolls int `yaml:"missing_polls,omitempty"`
	// A feed with fewer bookings than this fraction of the last good one (when that had at least 20) is suspicious and not applied. Default: 0.5.
	EmptyFraction float64 `yaml:"empty_fraction,omitempty"`
	// Accept a feed with no bookings at all in the window (e.g. a holiday feed); otherwise an empty feed is treated as a failure and the last good one kept. Default: false.
	AllowEmpty bool `yaml:"allow_empty,omitempty"`
	// HTTP request headers, e.g. Authorization. Values are secrets: ${ENV_VAR} or file:/path.
	Headers map[string]Secret `yaml:"headers,omitempty"`
	// Time zone of local times in this feed. Default: the gateway's time_zone.
	TimeZone *TimeZone `yaml:"time_zone,omitempty"`
}

// ICalSource reads an iCalendar feed.
type ICalSource struct {
	// Path of an .ics file, relative to the gateway config. Set file or url.
	File string `yaml:"file,omitempty"`
	// http(s) URL of the feed; fetched with conditional GET.
	URL string `yaml:"url,omitempty"`
	// Property that holds the booked resource id: LOCATION, RESOURCES or an X- property. Default: LOCATION.
	ResourceProperty string `yaml:"resource_property,omitempty"`
	// Property that holds the pseudonymous association id. Default: X-ASSOCIATION-ID.
	OrganiserProperty string `yaml:"organiser_property,omitempty"`
	// Secret key used to pseudonymise ORGANIZER when the organiser property is absent (HMAC-SHA256). Without it such bookings have no organiser. ${ENV_VAR} or file:/path.
	PseudonymKey *Secret `yaml:"pseudonym_key,omitempty"`
}

// TableSource reads CSV or JSON bookings.
type TableSource struct {
	// Path of the file, relative to the gateway config. Set file or url.
	File string `yaml:"file,omitempty"`
	// http(s) URL; fetched with conditional GET.
	URL string `yaml:"url,omitempty"`
	// Column (CSV) or field (JSON) names, where they differ from id, resource, organiser, start, end and status.
	Columns *Columns `yaml:"columns,omitempty"`
	// For JSON: the key of the array of bookings when the document is an object rather than an array.
	ArrayKey string `yaml:"array_key,omitempty"`
}

// Columns renames the fields of CSV and JSON bookings.
type Columns struct {
	// Booking id column. Default: id.
	ID string `yaml:"id,omitempty"`
	// Resource (room) id column. Default: resource.
	Resource string `yaml:"resource,omitempty"`
	// Pseudonymous organiser column. Default: organiser.
	Organiser string `yaml:"organiser,omitempty"`
	// Start column: RFC 3339 or "2006-01-02 15:04" local time. Default: start.
	Start string `yaml:"start,omitempty"`
	// End column. Default: end.
	End string `yaml:"end,omitempty"`
	// Status column (confirmed, tentative, cancelled); optional. Default: status.
	Status string `yaml:"status,omitempty"`
}

// TemplateFile defines the point list of one controller model, shared by
// every site that has that model.
type TemplateFile struct {
	// The template itself.
	Template TemplateInfo `yaml:"template" jsonschema:"required"`
	// The points of the model. OPC UA node ids are relative: the device's node_id_prefix is put in front. Modbus addresses are shifted by the device's address_offset.
	Points []Point `yaml:"points" jsonschema:"required"`

	file string
	pos  *Positions
}

// TemplateInfo names a template.
type TemplateInfo struct {
	// Unique id of the template, used by devices.
	ID string `yaml:"id" jsonschema:"required"`
	// Free text: vendor, model, firmware.
	Description string `yaml:"description,omitempty"`
}

// MappingFile is one site's mapping (mappings/*.yaml).
type MappingFile struct {
	// The site.
	Site SiteInfo `yaml:"site" jsonschema:"required"`
	// Booking sources feeding this site, by id, with their precedence.
	Sources []SourceRef `yaml:"sources,omitempty"`
	// Connections to controllers.
	Connections []Connection `yaml:"connections,omitempty"`
	// Controllers instantiated from device templates.
	Devices []Device `yaml:"devices,omitempty"`
	// Points declared directly at this site.
	Points []Point `yaml:"points,omitempty"`
	// Occupancy profiles (lead, lag, merge gap, minimum window).
	Profiles []Profile `yaml:"profiles,omitempty"`
	// Rooms, gyms, pitches and wings, and what their points take.
	Spaces []Space `yaml:"spaces,omitempty"`
	// Weekly base schedules, e.g. school hours.
	Schedules []Schedule `yaml:"schedules,omitempty"`
	// Calendars of exception days: holidays, one-off events.
	Calendars []Calendar `yaml:"calendars,omitempty"`
	// Alarm areas: disarmed inside the bookings of their space, armed outside, armed state read back.
	Areas []Area `yaml:"areas,omitempty"`
	// Doors with their locks: state from deadbolt, handle, contact, unlock output and reader.
	Doors []Door `yaml:"doors,omitempty"`
	// Intrusion and safety detectors, each in one alarm area.
	Detectors []Detector `yaml:"detectors,omitempty"`
	// The virtual patrol round after the day's last window.
	Round *Round `yaml:"round,omitempty"`
	// Access rights from bookings: the organiser's group gets the booked space's doors.
	AccessRights *AccessRights `yaml:"access,omitempty"`
	// What personal data the gateway may keep for this site.
	Privacy *Privacy `yaml:"privacy,omitempty"`
	// The energy report: the old practice's lending period and each space's declared power.
	Energy *Energy `yaml:"energy,omitempty"`
}

// SiteInfo identifies a site.
type SiteInfo struct {
	// Unique id of the site (lower case letters, digits, - and _).
	ID string `yaml:"id" jsonschema:"required"`
	// Name for people.
	Name string `yaml:"name,omitempty"`
	// IANA time zone of the site, e.g. Europe/Copenhagen.
	TimeZone *TimeZone `yaml:"time_zone" jsonschema:"required"`
}

// SourceRef binds a booking source to the site.
type SourceRef struct {
	// Id of a source in the gateway config.
	Source string `yaml:"source" jsonschema:"required"`
	// When bookings of two sources overlap on one resource, the higher precedence wins and the conflict is reported. Default: 0.
	Precedence int `yaml:"precedence,omitempty"`
}

// Connection is a link to a controller. Exactly one of opcua, modbus and serial is set.
type Connection struct {
	// Unique id of the connection within the site.
	ID string `yaml:"id" jsonschema:"required"`
	// An OPC UA server.
	OPCUA *OPCUAConnection `yaml:"opcua,omitempty"`
	// A Modbus device or gateway.
	Modbus *ModbusConnection `yaml:"modbus,omitempty"`
	// An alarm panel or access controller speaking a line-based ASCII protocol on a serial line.
	Serial *SerialConnection `yaml:"serial,omitempty"`
	// A point of this connection the gateway writes periodically with a counter, so that the controller can fall back to its own local schedule when the gateway is gone.
	Heartbeat *Heartbeat `yaml:"heartbeat,omitempty"`
}

// Heartbeat is a watchdog point written periodically.
type Heartbeat struct {
	// Writable integer point of this connection that receives a counter (0-32767, wrapping).
	Point string `yaml:"point" jsonschema:"required"`
	// How often it is written. Default: 30s.
	Period time.Duration `yaml:"period,omitempty"`
}

// OPCUAConnection is an OPC UA client connection.
type OPCUAConnection struct {
	// Endpoint URL, opc.tcp://host:port/path.
	Endpoint string `yaml:"endpoint" jsonschema:"required"`
	// Security policy: none or basic256sha256. Default: basic256sha256.
	SecurityPolicy SecurityPolicy `yaml:"security_policy,omitempty"`
	// Security mode: none, sign or sign_and_encrypt. Default: sign_and_encrypt (none when the policy is none).
	SecurityMode SecurityMode `yaml:"security_mode,omitempty"`
	// User name for user name authentication; anonymous without it.
	Username string `yaml:"username,omitempty"`
	// Password for username: ${ENV_VAR} or file:/path, never inline.
	Password *Secret `yaml:"password,omitempty"`
	// User certificate (PEM or DER) for X.509 user login instead of a user name.
	UserCertificateFile string `yaml:"user_certificate_file,omitempty"`
	// Private key of the user certificate.
	UserPrivateKeyFile string `yaml:"user_private_key_file,omitempty"`
	// Client application certificate (PEM or DER) for signing and encryption, relative to the mapping file; it must carry application_uri. Default: one the gateway makes itself under <state_dir>/pki/own (trust it on the server once).
	CertificateFile string `yaml:"certificate_file,omitempty"`
	// Private key of the client certificate (PEM).
	PrivateKeyFile string `yaml:"private_key_file,omitempty"`
	// Directory of trusted server certificates (DER or PEM); an unknown server certificate is refused (and copied to its rejected/ folder for review). Default: <state_dir>/pki/trusted.
	TrustedCertificatesDir string `yaml:"trusted_certificates_dir,omitempty"`
	// Accept the server certificate seen on first contact, save it to the trusted directory and pin it; a different one later is refused. Default: false.
	TrustOnFirstUse bool `yaml:"trust_on_first_use,omitempty"`
	// Timeout of one request. Default: 10s.
	RequestTimeout time.Duration `yaml:"request_timeout,omitempty"`
	// Most write requests per second to this server (each request may carry many points). Default: 10.
	WriteRate float64 `yaml:"write_rate,omitempty"`
	// The client's application URI, which must be in its certificate. Default: the certificate's, else urn:bmsgw:client.
	ApplicationURI string `yaml:"application_uri,omitempty"`
	// First wait before reconnecting after a failure; doubles up to backoff_max. Default: 1s.
	BackoffMin time.Duration `yaml:"backoff_min,omitempty"`
	// Longest wait between reconnects. Default: 1m.
	BackoffMax time.Duration `yaml:"backoff_max,omitempty"`
	// How often the server reports changes of subscribed points. Default: 1s.
	PublishingInterval time.Duration `yaml:"publishing_interval,omitempty"`
	// A read point whose value has not been confirmed for this long is marked stale. Default: the adapter's (see docs).
	StaleAfter time.Duration `yaml:"stale_after,omitempty"`
}

// SecurityPolicy is an OPC UA security policy.
type SecurityPolicy string

func (SecurityPolicy) enumValues() []string { return []string{"none", "basic256sha256"} }

// SecurityMode is an OPC UA message security mode.
type SecurityMode string

func (SecurityMode) enumValues() []string { return []string{"none", "sign", "sign_and_encrypt"} }

// ModbusConnection is a Modbus client connection.
type ModbusConnection struct {
	// tcp://host:port, tcp+tls://host:port or rtu:///dev/ttyUSB0.
	URL string `yaml:"url" jsonschema:"required"`
	// Default unit (slave) id of the points on this connection, 0-255. Default: 1.
	UnitID *uint8 `yaml:"unit_id,omitempty"`
	// Serial line settings for rtu://.
	Serial *SerialSettings `yaml:"serial,omitempty"`
	// Client certificate and server CA for tcp+tls:// (Modbus/TCP Security).
	TLS *TLSSettings `yaml:"tls,omitempty"`
	// Timeout of one request. Default: 1s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Repeats of a request after a busy reply, a timeout or a bad reply; a unit failing this many times plus one in a row is down. Default: 2.
	Retries *int `yaml:"retries,omitempty"`
	// First wait before a unit that is down is probed again; doubles up to backoff_max. Requests for a down unit fail at once, so one dead slave does not stall the others. Default: 1s.
	BackoffMin time.Duration `yaml:"backoff_min,omitempty"`
	// Longest wait between probes of a unit that is down. Default: 30s.
	BackoffMax time.Duration `yaml:"backoff_max,omitempty"`
	// Silence between frames on an rtu:// line. Default: 3.5 character times (1.75ms above 19200 baud).
	InterFrameDelay time.Duration `yaml:"inter_frame_delay,omitempty"`
	// Most registers the devices accept in one read, 1-125. Default: 125.
	MaxRegisters int `yaml:"max_registers,omitempty"`
	// Most coils or discrete inputs in one read, 1-2000. Default: 2000.
	MaxBits int `yaml:"max_bits,omitempty"`
	// Read through unused addresses to merge neighbouring reads. Default: true.
	ReadThroughGaps *bool `yaml:"read_through_gaps,omitempty"`
	// Most unused registers read through (x16 for coils). Default: 8.
	MaxGap *int `yaml:"max_gap,omitempty"`
	// Write neighbouring values in one FC16/FC15 request; false for devices without them. Default: true.
	WriteMultiple *bool `yaml:"write_multiple,omitempty"`
	// Most write requests per second to one unit. Default: 10.
	WriteRate float64 `yaml:"write_rate,omitempty"`
	// How often the points are read back. Default: 5s.
	PollInterval time.Duration `yaml:"poll_interval,omitempty"`
}

// SerialSettings are the line settings of an RS-485/RS-232 link.
type SerialSettings struct {
	// Baud rate. Default: 19200.
	BaudRate int `yaml:"baud_rate,omitempty"`
	// Data bits, 7 or 8. Default: 8.
	DataBits int `yaml:"data_bits,omitempty"`
	// Parity: none, even or odd. Default: even (the Modbus default).
	Parity Parity `yaml:"parity,omitempty"`
	// Stop bits, 1 or 2. Default: 1.
	StopBits int `yaml:"stop_bits,omitempty"`
}

// Parity is a serial parity setting.
type Parity string

func (Parity) enumValues() []string { return []string{"none", "even", "odd"} }

// TLSSettings are the files for Modbus/TCP Security (mutual TLS).
type TLSSettings struct {
	// Client certificate (PEM), relative to the mapping file.
	CertificateFile string `yaml:"certificate_file" jsonschema:"required"`
	// Private key of the client certificate (PEM).
	PrivateKeyFile string `yaml:"private_key_file" jsonschema:"required"`
	// CA certificates (PEM) that the server certificate must chain to.
	CAFile string `yaml:"ca_file" jsonschema:"required"`
}

// Device is a controller instantiated from a template.
type Device struct {
	// Unique id of the device within the site; its points are named <device>.<point>.
	ID string `yaml:"id" jsonschema:"required"`
	// Id of a device template.
	Template string `yaml:"template" jsonschema:"required"`
	// Connection the device is reached through.
	Connection string `yaml:"connection" jsonschema:"required"`
	// Modbus unit id of this device (overrides the connection's).
	UnitID *uint8 `yaml:"unit_id,omitempty"`
	// Added to every Modbus address of the template.
	AddressOffset int `yaml:"address_offset,omitempty"`
	// Put in front of every OPC UA node id of the template, e.g. "ns=2;s=Valby.Gym.AHU.".
	NodeIDPrefix string `yaml:"node_id_prefix,omitempty"`
	// Per-point changes for this site, by template point id.
	Overrides []PointOverride `yaml:"overrides,omitempty"`
}

// PointOverride changes a template point at one site.
type PointOverride struct {
	// Template point id.
	Point string `yaml:"point" jsonschema:"required"`
	// read or write.
	Access *site.Access `yaml:"access,omitempty"`
	// Lowest value that may be written.
	Min *float64 `yaml:"min,omitempty"`
	// Highest value that may be written.
	Max *float64 `yaml:"max,omitempty"`
	// Description for people.
	Description string `yaml:"description,omitempty"`
	// respect or enforce, see the point's on_external_change.
	OnExternalChange Policy `yaml:"on_external_change,omitempty"`
}

// Point is a BMS data point. On Modbus and OPC UA connections exactly one of modbus and opcua is set; points of a serial connection have no address (event lines set them).
type Point struct {
	// Unique id of the point within the site (or template).
	ID string `yaml:"id" jsonschema:"required"`
	// Connection of the point (not in templates: the device gives it).
	Connection string `yaml:"connection,omitempty"`
	// Description for people.
	Description string `yaml:"description,omitempty"`
	// Modbus address.
	Modbus *ModbusAddress `yaml:"modbus,omitempty"`
	// OPC UA address.
	OPCUA *OPCUAAddress `yaml:"opcua,omitempty"`
	// How a writable point of a serial connection is written (its command lines).
	Serial *SerialPoint `yaml:"serial,omitempty"`
	// Data type on the wire.
	Type DataType `yaml:"type" jsonschema:"required"`
	// read (default) or write. Only write points are ever written.
	Access Access `yaml:"access,omitempty"`
	// Engineering unit, e.g. °C.
	Unit string `yaml:"unit,omitempty"`
	// engineering = raw * scale + offset. Default: 1.
	Scale *float64 `yaml:"scale,omitempty"`
	// engineering = raw * scale + offset. Default: 0.
	Offset float64 `yaml:"offset,omitempty"`
	// Lowest engineering value that may be written.
	Min *float64 `yaml:"min,omitempty"`
	// Highest engineering value that may be written.
	Max *float64 `yaml:"max,omitempty"`
	// Names of the allowed values of an enumerated point, e.g. {off: 0, economy: 1, comfort: 2}. Only these may be written.
	Labels map[string]float64 `yaml:"labels,omitempty"`
	// What the gateway does when someone changes this written point at the BMS: respect (leave it until the next scheduled change, and report it) or enforce (write the desired value back). Default: respect.
	OnExternalChange Policy `yaml:"on_external_change,omitempty"`
}

// Policy is respect or enforce.
type Policy string

func (Policy) enumValues() []string { return []string{"respect", "enforce"} }

// ModbusAddress locates a point in a Modbus device.
type ModbusAddress struct {
	// coil, discrete_input, holding_register or input_register.
	Table ModbusTable `yaml:"table" jsonschema:"required"`
	// Zero-based protocol address (holding register 40001 is 0).
	Address *uint16 `yaml:"address" jsonschema:"required"`
	// Bit 0-15 of a register, for a bool point in a register.
	Bit *int `yaml:"bit,omitempty"`
	// Unit id (overrides the connection's and the device's).
	UnitID *uint8 `yaml:"unit_id,omitempty"`
	// Byte order within a register: big (the Modbus standard) or little. Default: big.
	ByteOrder ByteOrder `yaml:"byte_order,omitempty"`
	// Word order of 32- and 64-bit values: big (high word first) or little. Default: big.
	WordOrder ByteOrder `yaml:"word_order,omitempty"`
}

// OPCUAAddress locates a point in an OPC UA server.
type OPCUAAddress struct {
	// Node id, e.g. ns=2;s=Valby.Gym.AHU.Mode (in templates: the part after the device's node_id_prefix).
	NodeID string `yaml:"node_id" jsonschema:"required"`
}

// DataType is a point's wire data type.
type DataType = site.DataType

// Access is read or write.
type Access = site.Access

// ModbusTable is a Modbus data table.
type ModbusTable = site.ModbusTable

// ByteOrder is big or little.
type ByteOrder = site.ByteOrder

// Profile is an occupancy profile shared by spaces.
type Profile struct {
	// Unique id of the profile.
	ID string `yaml:"id" jsonschema:"required"`
	// Time before a booking that the space's points go to their occupied values (pre-heating). Default: 0s.
	Lead time.Duration `yaml:"lead,omitempty"`
	// Time after a booking that they stay there. Default: 0s.
	Lag time.Duration `yaml:"lag,omitempty"`
	// Windows closer than this are joined, so plant does not cycle between bookings. Default: 0s.
	MergeGap time.Duration `yaml:"merge_gap,omitempty"`
	// Shorter windows are extended to this length. Default: 0s.
	MinWindow time.Duration `yaml:"min_window,omitempty"`
}

// Space is a room, gym, hall, pitch or wing.
type Space struct {
	// Unique id of the space within the site.
	ID string `yaml:"id" jsonschema:"required"`
	// Name for people.
	Name string `yaml:"name,omitempty"`
	// room, gym, hall, pitch, wing, building or other. Default: room.
	Kind SpaceKind `yaml:"kind,omitempty"`
	// Id of the enclosing space (a wing); it is occupied whenever this space is.
	Within string `yaml:"within,omitempty"`
	// Booking system resource ids of this space.
	Resources []string `yaml:"resources,omitempty"`
	// Id of the occupancy profile. Default: all times zero.
	Profile string `yaml:"profile,omitempty"`
	// Ids of base schedules that also occupy the space.
	Schedules []string `yaml:"schedules,omitempty"`
	// What each point of the space takes when it is occupied and vacant.
	Points []Binding `yaml:"points,omitempty"`
	// Sources of evidence that the space is in use (cards, water, motion, CO2).
	Evidence []Evidence `yaml:"evidence,omitempty"`
	// Release the space's points early when a booking shows no evidence of use.
	NoShow *NoShow `yaml:"no_show,omitempty"`
	// Enable some of the space's lights only inside a booking and after a card (floodlights, hall lights).
	LightsByCard *LightsByCard `yaml:"lights_by_card,omitempty"`
}

// SpaceKind classifies spaces.
type SpaceKind = site.SpaceKind

// Binding sets a point from a space's occupancy.
type Binding struct {
	// Point id (template points: <device>.<point>). Must be writable.
	Point string `yaml:"point" jsonschema:"required"`
	// Value while occupied: a number, true/false, or a label of the point.
	Occupied *Scalar `yaml:"occupied" jsonschema:"required"`
	// Value while vacant.
	Vacant *Scalar `yaml:"vacant" jsonschema:"required"`
	// Lead time for this point (overrides the profile's).
	Lead *time.Duration `yaml:"lead,omitempty"`
	// Lag time for this point (overrides the profile's).
	Lag *time.Duration `yaml:"lag,omitempty"`
}

// Schedule is a weekly base schedule.
type Schedule struct {
	// Unique id of the schedule.
	ID string `yaml:"id" jsonschema:"required"`
	// Weekly periods.
	Weekly []WeeklyPeriod `yaml:"weekly" jsonschema:"required"`
	// Ids of calendars of exception days, first match wins.
	Exceptions []string `yaml:"exceptions,omitempty"`
}

// WeeklyPeriod is a period on some weekdays.
type WeeklyPeriod struct {
	// Weekdays: mon, tue, wed, thu, fri, sat, sun.
	Days []Weekday `yaml:"days" jsonschema:"required"`
	// Start, local time HH:MM.
	From *Clock `yaml:"from" jsonschema:"required"`
	// End, local time HH:MM (24:00 allowed), after from.
	To *Clock `yaml:"to" jsonschema:"required"`
}

// Weekday is a day of the week.
type Weekday string

func (Weekday) enumValues() []string {
	return []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
}

// Calendar is a list of exception days.
type Calendar struct {
	// Unique id of the calendar.
	ID string `yaml:"id" jsonschema:"required"`
	// The exception days.
	Days []ExceptionDay `yaml:"days" jsonschema:"required"`
}

// ExceptionDay is one date or a range of dates. Without hours the schedule is off; with hours those replace the weekly periods.
type ExceptionDay struct {
	// A single date, YYYY-MM-DD. Set date, or from and to.
	Date *Date `yaml:"date,omitempty"`
	// First date of a range.
	From *Date `yaml:"from,omitempty"`
	// Last date of a range (inclusive).
	To *Date `yaml:"to,omitempty"`
	// Name for people, e.g. Juleaftensdag.
	Name string `yaml:"name" jsonschema:"required"`
	// Hours on these dates instead of the weekly ones; empty means closed.
	Hours []DayPeriod `yaml:"hours,omitempty"`
}

// DayPeriod is a period within a day.
type DayPeriod struct {
	// Start, local time HH:MM.
	From *Clock `yaml:"from" jsonschema:"required"`
	// End, local time HH:MM (24:00 allowed).
	To *Clock `yaml:"to" jsonschema:"required"`
}
