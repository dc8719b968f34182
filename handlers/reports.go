package handlers

import (
	"encoding/csv"
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/views/pages"
)

// demoReports is the demo data behind /reports.
var demoReports = []pages.Report{
	{Name: "Quarterly revenue", Owner: "Finance", Period: "Q2 2026", Revenue: "$1,284,000", Status: "final"},
	{Name: "Churn by cohort", Owner: "Growth", Period: "June 2026", Revenue: "$312,450", Status: "final"},
	{Name: "Pipeline forecast", Owner: "Sales", Period: "Q3 2026", Revenue: "$2,040,000", Status: "draft"},
	{Name: "Support cost per seat", Owner: "Operations", Period: "H1 2026", Revenue: "$96,300", Status: "review"},
}

// Reports serves the demo resources gated by permissions.
type Reports struct {
	rd *renderer
}

// List shows the reports (GET /reports, needs read:reports).
func (h *Reports) List(c echo.Context) error {
	return h.rd.render(c, http.StatusOK, pages.Reports(pages.ReportsProps{
		Reports:   demoReports,
		CanExport: auth.Can(c.Request().Context(), permExportReports),
	}))
}

// liveParts is the reports page's part of a live update: the Export button
// comes and goes with export:reports.
func (h *Reports) liveParts(_ echo.Context, s *auth.Session) []templ.Component {
	return []templ.Component{pages.ExportAction(s.Can(permExportReports), true)}
}

// Export downloads the reports as CSV (GET /reports/export, needs
// export:reports).
func (h *Reports) Export(c echo.Context) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="reports.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"report", "owner", "period", "revenue", "status"})
	for _, r := range demoReports {
		_ = cw.Write([]string{r.Name, r.Owner, r.Period, r.Revenue, r.Status})
	}
	cw.Flush()
	return cw.Error()
}
