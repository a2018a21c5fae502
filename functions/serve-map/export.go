package function

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"strconv"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// exportMeta names what an export holds.
type exportMeta struct {
	Title     string
	DroneID   string
	DroneName string
	FlightID  string // "" for a time-range export
	File      string // download name without extension
}

type exporter struct {
	contentType string
	write       func(exportMeta, []events.Report) ([]byte, error)
}

// exporters are the formats of the export endpoints.
var exporters = map[string]exporter{
	"gpx":     {"application/gpx+xml", writeGPX},
	"kml":     {"application/vnd.google-earth.kml+xml", writeKML},
	"csv":     {"text/csv; charset=utf-8", writeCSV},
	"geojson": {"application/geo+json", writeGeoJSON},
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// GPX 1.1 (https://www.topografix.com/GPX/1/1/): one track, one segment;
// each point has ele (metres above mean sea level, GPX's reference) and
// time, plus geoidheight (hae - alt), fix and sat when reported. Child
// order follows the schema's sequence.
type gpxDoc struct {
	XMLName        xml.Name    `xml:"gpx"`
	Version        string      `xml:"version,attr"`
	Creator        string      `xml:"creator,attr"`
	XMLNS          string      `xml:"xmlns,attr"`
	XSI            string      `xml:"xmlns:xsi,attr"`
	SchemaLocation string      `xml:"xsi:schemaLocation,attr"`
	Metadata       gpxMetadata `xml:"metadata"`
	Trk            gpxTrk      `xml:"trk"`
}

type gpxMetadata struct {
	Name string `xml:"name"`
	Desc string `xml:"desc,omitempty"`
	Time string `xml:"time,omitempty"`
}

type gpxTrk struct {
	Name string     `xml:"name"`
	Src  string     `xml:"src"`
	Seg  []gpxTrkpt `xml:"trkseg>trkpt"`
}

type gpxTrkpt struct {
	Lat         string  `xml:"lat,attr"`
	Lon         string  `xml:"lon,attr"`
	Ele         *string `xml:"ele,omitempty"`
	Time        string  `xml:"time"`
	GeoidHeight *string `xml:"geoidheight,omitempty"`
	Fix         string  `xml:"fix,omitempty"`
	Sat         *int    `xml:"sat,omitempty"`
}

// gpxFix maps MAVLink GPS_FIX_TYPE to GPX's fixType (none, 2d, 3d, dgps,
// pps): RTK is differential; "pps" is the military signal, not PPP.
func gpxFix(f *int) string {
	if f == nil {
		return ""
	}
	switch *f {
	case events.FixNoGPS, events.FixNone:
		return "none"
	case events.Fix2D:
		return "2d"
	case events.FixDGPS, events.FixRTKFlt, events.FixRTKFix:
		return "dgps"
	default:
		return "3d"
	}
}

func strPtr(s string) *string { return &s }

// xmlDoc is doc as an XML file: the declaration, one-space indent, a final
// newline (GPX and KML alike).
func xmlDoc(doc any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeGPX(m exportMeta, pts []events.Report) ([]byte, error) {
	doc := gpxDoc{Version: "1.1", Creator: "Dronetrack", XMLNS: "http://www.topografix.com/GPX/1/1",
		XSI:            "http://www.w3.org/2001/XMLSchema-instance",
		SchemaLocation: "http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd",
		Metadata:       gpxMetadata{Name: m.Title, Desc: "drone " + m.DroneID},
		Trk:            gpxTrk{Name: m.Title, Src: "Dronetrack drone " + m.DroneID, Seg: []gpxTrkpt{}}}
	if len(pts) > 0 {
		doc.Metadata.Time = ts(pts[0].TS)
	}
	for _, p := range pts {
		tp := gpxTrkpt{Lat: num(p.Lat), Lon: num(p.Lon), Time: ts(p.TS), Fix: gpxFix(p.Fix), Sat: p.Satellites}
		if p.Alt != nil {
			tp.Ele = strPtr(num(*p.Alt))
			if p.HAE != nil {
				tp.GeoidHeight = strPtr(num(*p.HAE - *p.Alt))
			}
		}
		doc.Trk.Seg = append(doc.Trk.Seg, tp)
	}
	return xmlDoc(doc)
}

// KML 2.2: the track as a gx:Track (a time per point) and as a LineString
// (for viewers without the gx extension), with take-off and landing
// marks. Altitudes are absolute (mean sea level) when every point has one,
// else the track is clamped to the ground.
func writeKML(m exportMeta, pts []events.Report) ([]byte, error) {
	type point struct {
		Coordinates string `xml:"coordinates"`
	}
	type placemark struct {
		Name      string `xml:"name"`
		TimeStamp *struct {
			When string `xml:"when"`
		} `xml:"TimeStamp,omitempty"`
		Point      *point `xml:"Point,omitempty"`
		LineString *struct {
			AltitudeMode string `xml:"altitudeMode"`
			Coordinates  string `xml:"coordinates"`
		} `xml:"LineString,omitempty"`
		Track *struct {
			AltitudeMode string   `xml:"altitudeMode"`
			When         []string `xml:"when"`
			Coord        []string `xml:"gx:coord"`
		} `xml:"gx:Track,omitempty"`
	}
	type kml struct {
		XMLName  xml.Name `xml:"kml"`
		XMLNS    string   `xml:"xmlns,attr"`
		GX       string   `xml:"xmlns:gx,attr"`
		Document struct {
			Name       string      `xml:"name"`
			Placemarks []placemark `xml:"Placemark"`
		} `xml:"Document"`
	}
	absolute := len(pts) > 0
	for _, p := range pts {
		absolute = absolute && p.Alt != nil
	}
	mode := "clampToGround"
	if absolute {
		mode = "absolute"
	}
	coord := func(p events.Report, sep string) string {
		c := num(p.Lon) + sep + num(p.Lat)
		if absolute {
			c += sep + num(*p.Alt)
		} else if sep == " " {
			c += " 0"
		}
		return c
	}
	doc := kml{XMLNS: "http://www.opengis.net/kml/2.2", GX: "http://www.google.com/kml/ext/2.2"}
	doc.Document.Name = m.Title
	track := placemark{Name: m.Title}
	track.Track = &struct {
		AltitudeMode string   `xml:"altitudeMode"`
		When         []string `xml:"when"`
		Coord        []string `xml:"gx:coord"`
	}{AltitudeMode: mode}
	line := placemark{Name: m.Title + " (line)"}
	line.LineString = &struct {
		AltitudeMode string `xml:"altitudeMode"`
		Coordinates  string `xml:"coordinates"`
	}{AltitudeMode: mode}
	var cs bytes.Buffer
	for i, p := range pts {
		track.Track.When = append(track.Track.When, ts(p.TS))
		track.Track.Coord = append(track.Track.Coord, coord(p, " "))
		if i > 0 {
			cs.WriteByte(' ')
		}
		cs.WriteString(coord(p, ","))
	}
	line.LineString.Coordinates = cs.String()
	doc.Document.Placemarks = append(doc.Document.Placemarks, track, line)
	if len(pts) > 0 {
		for _, e := range []struct {
			name string
			p    events.Report
		}{{"Take-off", pts[0]}, {"Landing", pts[len(pts)-1]}} {
			pm := placemark{Name: e.name, Point: &point{Coordinates: coord(e.p, ",")}}
			pm.TimeStamp = &struct {
				When string `xml:"when"`
			}{ts(e.p.TS)}
			doc.Document.Placemarks = append(doc.Document.Placemarks, pm)
		}
	}
	return xmlDoc(doc)
}

// csvHeader names the CSV columns: units in the names, alt above mean sea
// level, hae above the WGS84 ellipsoid, height above take-off.
var csvHeader = []string{"time", "lat", "lon", "alt_msl_m", "hae_m", "height_m", "speed_mps", "vspeed_mps",
	"heading_deg", "battery_pct", "armed", "mode", "fix", "satellites", "hacc_m", "vacc_m", "link_pct", "seq"}

func writeCSV(_ exportMeta, pts []events.Report) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvHeader)
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return num(*p)
	}
	i := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	for _, p := range pts {
		armed, mode, seq := "", "", ""
		if p.Armed != nil {
			armed = strconv.FormatBool(*p.Armed)
		}
		if p.Mode != nil {
			mode = *p.Mode
		}
		if p.Seq != nil {
			seq = strconv.FormatUint(*p.Seq, 10)
		}
		_ = w.Write([]string{ts(p.TS), num(p.Lat), num(p.Lon), f(p.Alt), f(p.HAE), f(p.Height), f(p.Speed), f(p.VSpeed),
			f(p.Heading), f(p.Battery), armed, mode, i(p.Fix), i(p.Satellites), f(p.HAcc), f(p.VAcc), f(p.Link), seq})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// GeoJSON (RFC 7946): a LineString whose optional third coordinate is, by
// the RFC, height above the WGS84 ellipsoid, so it is hae and present only
// when every point has one; per-point times, altitude above mean sea
// level, height above take-off and battery are parallel arrays in the
// properties.
func writeGeoJSON(m exportMeta, pts []events.Report) ([]byte, error) {
	withHAE := len(pts) > 0
	for _, p := range pts {
		withHAE = withHAE && p.HAE != nil
	}
	coords := make([][]float64, 0, len(pts))
	times := make([]string, 0, len(pts))
	alt, height, battery := make([]*float64, 0, len(pts)), make([]*float64, 0, len(pts)), make([]*float64, 0, len(pts))
	for _, p := range pts {
		c := []float64{p.Lon, p.Lat}
		if withHAE {
			c = append(c, *p.HAE)
		}
		coords = append(coords, c)
		times = append(times, ts(p.TS))
		alt, height, battery = append(alt, p.Alt), append(height, p.Height), append(battery, p.Battery)
	}
	props := map[string]any{"title": m.Title, "droneId": m.DroneID, "droneName": m.DroneName, "times": times,
		"altMSL": alt, "height": height, "battery": battery}
	if m.FlightID != "" {
		props["flightId"] = m.FlightID
	}
	// A LineString needs two positions: one report is a Point, none no geometry.
	var geometry any
	switch len(coords) {
	case 0:
	case 1:
		geometry = map[string]any{"type": "Point", "coordinates": coords[0]}
	default:
		geometry = map[string]any{"type": "LineString", "coordinates": coords}
	}
	fc := map[string]any{"type": "FeatureCollection", "features": []any{map[string]any{
		"type": "Feature", "properties": props, "geometry": geometry,
	}}}
	b, err := json.Marshal(fc)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
