package report

import "fmt"

// texts are the words of one report language.
type texts map[string]string

// t returns a label, falling back to the key so a missing translation shows
// up as an English-ish word rather than an empty cell.
func (t texts) t(key string) string {
	if s, ok := t[key]; ok {
		return s
	}
	return key
}

// month names a calendar month 1–12.
func (t texts) month(m int) string {
	if m < 1 || m > 12 {
		return "?"
	}
	return t.t(fmt.Sprintf("month_%d", m))
}

func init() {
	for i, name := range []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"} {
		languages["en"][fmt.Sprintf("month_%d", i+1)] = name
		languages["zh-CN"][fmt.Sprintf("month_%d", i+1)] = fmt.Sprintf("%d月", i+1)
	}
}

var languages = map[string]texts{
	"en": {
		"title":            "Customer segment summary",
		"all_units":        "All business units",
		"unit":             "Business unit",
		"as_of":            "Data as of",
		"generated":        "Generated",
		"customers":        "Customers",
		"revenue":          "Revenue",
		"segment":          "Segment",
		"customer_sh":      "Share of customers",
		"revenue_sh":       "Share of revenue",
		"segments":         "Segment sizes and revenue share",
		"units":            "Business units",
		"pareto":           "ABC analysis (Pareto curve)",
		"pareto_note":      "%s of customers bring 75%% of revenue; %s bring 95%%.",
		"pareto_x":         "share of customers (ranked by revenue)",
		"pareto_y":         "cumulative share of revenue",
		"abc_class":        "ABC class",
		"churn":            "Churn-risk distribution",
		"band":             "Risk band",
		"at_risk":          "High-value customers at high risk",
		"at_risk_none":     "No customer has a churn score of %g or more.",
		"customer":         "Customer",
		"score":            "Churn score",
		"value":            "Net revenue",
		"drivers":          "Drivers",
		"seasonal":         "Seasonal index by month",
		"seasonal_note":    "1.00 = an average month; 1.20 = 20% above it.",
		"at_risk_note":     "Customers with a churn score of %g or more, most valuable first.",
		"why":              "Why",
		"movement":         "What moved since last week",
		"movement_none":    "Not enough history yet: segment_history needs two week ends.",
		"movement_since":   "What moved since %s",
		"movement_note":    "Week ending %s against week ending %s: %s customers changed segment and %s are new; %s customers with %s of revenue moved into at risk, can't lose or lost.",
		"movement_churn":   "%s customers with %s of revenue moved into high churn risk (band high or critical from low or medium, on their order history).",
		"from":             "From",
		"to":               "To",
		"new_customer":     "(new customer)",
		"champions_moves":  "Champions lost and gained",
		"champion_lost":    "left",
		"champion_gained":  "joined",
		"champions_none":   "No customer left or joined the champions.",
		"cohorts":          "Do new customers come back? (cohort retention)",
		"cohorts_note":     "Each row is the customers who first bought in that month; each cell the share of them buying N months later. The latest month is still running.",
		"cohorts_x":        "months since the first purchase →",
		"cohort":           "First purchase",
		"month_n":          "Month %d",
		"why_sep":          "; ",
		"why_rhythm":       "no order for %d days; usually orders every %d days",
		"why_alive":        "likely no longer buying (%d%% chance still active)",
		"why_open":         "%d open ticket(s)",
		"why_overdue":      "%d ticket(s) overdue",
		"why_complaints":   "%d recent complaint(s)",
		"why_satisfaction": "%d low satisfaction rating(s) recently",
		"pareto_mark":      "%s of customers → %s",
		"seasonal_ref":     "1.00 = average",
		"critical":         "critical",
		"change":           "Change since the previous report",
		"change_none":      "No earlier report to compare with.",
		"previous":         "Previous (%s)",
		"now":              "Now",
		"delta":            "Change",
		"skipped":          "Not available yet: the warehouse has no %s.",
		"subject":          "%s — %s",
		"text_intro":       "The HTML version of this message has the charts.",
		"no_data":          "The published marts have no rows for this scope.",
	},
	"zh-CN": {
		"title":            "客户细分摘要",
		"all_units":        "全部业务单元",
		"unit":             "业务单元",
		"as_of":            "数据截至",
		"generated":        "生成时间",
		"customers":        "客户数",
		"revenue":          "收入",
		"segment":          "细分",
		"customer_sh":      "客户占比",
		"revenue_sh":       "收入占比",
		"segments":         "细分规模与收入占比",
		"units":            "业务单元",
		"pareto":           "ABC 分析（帕累托曲线）",
		"pareto_note":      "%s 的客户贡献了 75%% 的收入；%s 的客户贡献了 95%%。",
		"pareto_x":         "客户占比（按收入排序）",
		"pareto_y":         "累计收入占比",
		"abc_class":        "ABC 类别",
		"churn":            "流失风险分布",
		"band":             "风险等级",
		"at_risk":          "高风险的高价值客户",
		"at_risk_none":     "没有流失评分达到 %g 或以上的客户。",
		"customer":         "客户",
		"score":            "流失评分",
		"value":            "净收入",
		"drivers":          "原因",
		"seasonal":         "月度季节指数",
		"seasonal_note":    "1.00 = 平均月份；1.20 = 比平均高 20%。",
		"at_risk_note":     "流失评分达到 %g 或以上的客户，按价值从高到低排列。",
		"why":              "原因",
		"movement":         "上周以来的变化",
		"movement_none":    "历史数据不足：segment_history 需要两个周末。",
		"movement_since":   "自 %s 以来的变化",
		"movement_note":    "截至 %s 的一周与截至 %s 的一周相比：%s 位客户改变了细分，%s 位为新客户；%s 位客户（收入 %s）进入有流失风险、不能失去或已流失。",
		"movement_churn":   "%s 位客户（收入 %s）进入高流失风险（按订单历史，风险等级由低或中升至高或极高）。",
		"from":             "原细分",
		"to":               "新细分",
		"new_customer":     "（新客户）",
		"champions_moves":  "流失与新增的冠军客户",
		"champion_lost":    "离开",
		"champion_gained":  "加入",
		"champions_none":   "没有客户离开或加入冠军客户。",
		"cohorts":          "新客户会回来吗？（同期群留存）",
		"cohorts_note":     "每行是在该月首次购买的客户；每格是其中在 N 个月后再次购买的比例。最近一个月尚未结束。",
		"cohorts_x":        "距首次购买的月数 →",
		"cohort":           "首次购买",
		"month_n":          "第 %d 个月",
		"why_sep":          "；",
		"why_rhythm":       "已 %d 天未下单；通常每 %d 天下单一次",
		"why_alive":        "可能已不再购买（仍活跃的概率 %d%%）",
		"why_open":         "%d 个未关闭工单",
		"why_overdue":      "%d 个工单已超期",
		"why_complaints":   "近期投诉 %d 次",
		"why_satisfaction": "近期 %d 次低满意度评分",
		"pareto_mark":      "%s 的客户 → %s",
		"seasonal_ref":     "1.00 = 平均",
		"critical":         "严重",
		"A":                "A",
		"change":           "与上期报告相比的变化",
		"change_none":      "没有可比较的上期报告。",
		"previous":         "上期（%s）",
		"now":              "本期",
		"delta":            "变化",
		"skipped":          "暂不可用：仓库中尚无 %s。",
		"subject":          "%s — %s",
		"text_intro":       "本邮件的 HTML 版本包含图表。",
		"no_data":          "已发布的数据集中没有该范围的数据。",
		// RFM segment names as produced by sql/marts/customer_segments.sql.
		"champions":          "冠军客户",
		"loyal":              "忠诚客户",
		"potential loyalist": "潜在忠诚客户",
		"new":                "新客户",
		"promising":          "有潜力客户",
		"need attention":     "需要关注",
		"at risk":            "有流失风险",
		"can't lose":         "不能失去",
		"hibernating":        "休眠客户",
		"lost":               "已流失",
		"high":               "高",
		"medium":             "中",
		"low":                "低",
	},
}
