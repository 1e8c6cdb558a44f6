//! Built-in trigger lexicons and the keyword matcher the triage detectors share.
//!
//! Matching reuses the brain's normalization ([`crate::brain::text`]): lowercase, punctuation
//! split into clauses, full-width folded, common traditional characters simplified, Chinese
//! keywords as substrings and other keywords on word boundaries; its one traditional → simplified
//! table covers triage's words too (订, 骗, 诈...). Added here are *exclusions*: phrases that
//! contain a trigger word without being a trigger ("an authorized agent store", "人工智能"); a
//! hit inside an exclusion span in the same clause is dropped.

use super::sound::{self, Sound};
use crate::brain::text::{self, NegationWindow};

/// A keyword ready for matching.
#[derive(Debug, Clone)]
pub(crate) struct Kw {
    /// As the designer wrote it (shown in evidence).
    pub raw: String,
    /// Normalized, as matched.
    pub norm: String,
    pub cjk: bool,
    /// What it sounds like, for keywords long enough to match by sound.
    pub sound: Option<Sound>,
}

/// Normalizes and keeps the usable keywords (a keyword of pure punctuation matches nothing).
pub(crate) fn compile<'a>(lists: impl IntoIterator<Item = &'a str>) -> Vec<Kw> {
    lists
        .into_iter()
        .filter_map(|raw| {
            let norm = text::normalize_keyword(raw)?;
            let cjk = text::has_cjk(&norm);
            Some(Kw { raw: raw.to_string(), cjk, sound: Sound::of(&norm, cjk), norm })
        })
        .collect()
}


/// Normalized clauses of an utterance.
pub(crate) fn clauses(s: &str) -> Vec<String> {
    text::normalize(s)
}

/// One keyword occurrence that survived exclusions and negation.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub kw: String,
    pub clause: String,
    /// 1 for the keyword itself; less for a sound-alike (see [`sound`]).
    pub quality: f32,
    /// What was actually written, when it was a sound-alike ("still in" for "stolen").
    pub heard: Option<String>,
}

/// Negation settings in matcher form.
#[derive(Debug, Clone)]
pub(crate) struct Negation {
    pub cues: Vec<String>,
    pub window: NegationWindow,
}

/// How the hits of a lexicon fell out in one utterance. Demoted hits are kept apart so tests
/// (and a future record) can tell "declined" from "never said".
#[derive(Debug, Default, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Scan {
    /// Hits that count.
    pub found: Vec<Found>,
    /// Hits that a negation cue declined ("不用转人工").
    pub declined: Vec<Found>,
    /// Hits inside an exclusion phrase ("agent store").
    pub mentioned: Vec<Found>,
}

/// Scans `clauses` for `kws`. Exclusion spans and negation (when given) demote hits.
pub(crate) fn scan(clauses: &[String], kws: &[Kw], exclusions: &[Kw], negation: Option<&Negation>) -> Scan {
    scan_with(clauses, kws, exclusions, negation, false)
}

/// [`scan`], plus the keywords' sound-alikes (demoted by the same exclusions and negation).
pub(crate) fn scan_heard(clauses: &[String], kws: &[Kw], exclusions: &[Kw], negation: Option<&Negation>) -> Scan {
    scan_with(clauses, kws, exclusions, negation, true)
}

fn scan_with(clauses: &[String], kws: &[Kw], exclusions: &[Kw], negation: Option<&Negation>, sounds: bool) -> Scan {
    let mut out = Scan::default();
    for clause in clauses {
        let spans: Vec<(usize, usize)> = exclusions
            .iter()
            .flat_map(|e| text::find_all(clause, &e.norm).into_iter().map(move |s| (s, s + e.norm.len())))
            .collect();
        for kw in kws {
            let exact = text::find_all(clause, &kw.norm).into_iter().map(|s| (s, s + kw.norm.len(), 1.0));
            let alike = kw
                .sound
                .as_ref()
                .filter(|_| sounds)
                .map(|snd| sound::find(clause, &kw.norm, snd))
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.start, h.end, h.quality));
            for (start, end, quality) in exact.chain(alike) {
                let heard = (quality < 1.0).then(|| clause[start..end].to_string());
                let f = Found { kw: kw.raw.clone(), clause: clause.clone(), quality, heard };
                if spans.iter().any(|&(a, b)| start < b && a < end) {
                    out.mentioned.push(f);
                } else if negation.is_some_and(|n| text::is_negated(clause, start, kw.cjk, &n.cues, n.window)) {
                    out.declined.push(f);
                } else {
                    out.found.push(f);
                }
            }
        }
    }
    out
}

/// True when some clause contains one of `kws` (exactly).
pub(crate) fn contains_any(clause: &str, kws: &[Kw]) -> bool {
    kws.iter().any(|k| !text::find_all(clause, &k.norm).is_empty())
}

/// Token set for the "caller repeats themselves" check: words for Latin text, character
/// bigrams for Chinese (which has no spaces to split on).
pub(crate) fn tokens(clauses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in clauses {
        for w in c.split(' ').filter(|w| !w.is_empty()) {
            let chars: Vec<char> = w.chars().collect();
            if chars.iter().any(|c| text::is_cjk(*c)) {
                if chars.len() == 1 {
                    out.push(w.to_string());
                }
                for pair in chars.windows(2) {
                    out.push(pair.iter().collect());
                }
            } else {
                out.push(w.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, deduplicated token lists.
pub(crate) fn similarity(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = a.iter().filter(|t| b.binary_search(t).is_ok()).count();
    let union = a.len() + b.len() - inter;
    inter as f32 / union as f32
}

// ------------------------------------------------------------------ built-in lists
//
// Written for a telecom front line. A service designer adds words in [triage.*] (`en`, `zh`,
// `not_en`, `not_zh`) or switches these off with `builtin_lexicons = false`.

pub(crate) const NEGATION_EN: &[&str] =
    &["dont", "do not", "not", "no need", "never", "without", "wont", "dont want", "doesnt", "didnt ask"];
pub(crate) const NEGATION_ZH: &[&str] = &["不用", "不要", "不需要", "不想", "别", "不必", "无需", "没必要", "用不着"];

pub(crate) const EXPLICIT_EN: &[&str] = &[
    "agent", "representative", "real person", "a human", "human being", "operator", "live person",
    "speak to someone", "talk to someone", "talk to a person", "speak to a person", "speak with someone",
    "customer service rep", "supervisor", "manager",
];
pub(crate) const EXPLICIT_ZH: &[&str] = &[
    "转人工", "人工客服", "人工服务", "人工", "真人", "客服人员", "接线员", "找个人", "活人", "工作人员", "主管", "经理",
];
/// Phrases that mention a trigger word without asking for a person.
pub(crate) const EXPLICIT_NOT_EN: &[&str] = &[
    "agent store", "agent shop", "authorized agent", "authorised agent", "agent outlet", "sales agent",
    "travel agent", "agent told me", "agent said", "an agent told", "the agent told", "talked to an agent",
    "spoke to an agent", "spoke with an agent", "network operator", "mobile operator", "operator fee",
    "am i talking to a real person", "is this a real person", "are you a real person", "are you a human",
    "account manager said", "store manager",
];
pub(crate) const EXPLICIT_NOT_ZH: &[&str] = &[
    "人工智能", "代理点", "代理商", "授权代理", "人工费", "刚才人工", "上次人工", "人工说", "你是真人吗", "是真人吗",
    "是不是真人", "工作人员说", "工作人员告诉", "经理说",
];

/// Words that make a clause naming the human desk a question *about* it (its hours, whether it
/// is open) or a report of an earlier contact, rather than a request to be put through.
pub(crate) const EXPLICIT_INQUIRY_EN: &[&str] = &[
    "hours", "what time", "which time", "when are", "when is", "when do", "when does", "when can", "open on", "open at",
    "open until", "open till", "are open", "is open", "open today", "open tomorrow", "on sundays", "on weekends",
    "at weekends", "24 7", "around the clock", "twenty four hours",
    // Reported speech: what a person said before is not a request now.
    "last time", "told me", "explained",
];
pub(crate) const EXPLICIT_INQUIRY_ZH: &[&str] = &[
    "几点", "时间", "什么时候", "上班", "下班", "营业", "二十四小时", "24小时", "周末", "节假日", "几时", "开放", "开门",
    "关门",
];

/// The caller says the problem is gone: the troubleshooting loop that led there was progress,
/// not confusion.
pub(crate) const RESOLVED_EN: &[&str] = &[
    "it works", "it worked", "its working", "working again", "works again", "works now", "working now",
    "back to normal", "its fixed", "fixed now", "thats fixed", "all sorted", "sorted now", "problem solved",
    "thats solved", "all good now", "its back", "back online", "that did it", "that did the trick", "works",
    "working fine", "fine now",
];
pub(crate) const RESOLVED_ZH: &[&str] =
    &["好了", "能用了", "正常了", "可以用了", "恢复了", "解决了", "能上网了", "没问题了", "修好了", "通了"];
/// Contain a resolution word without saying the problem is gone.
pub(crate) const RESOLVED_NOT: &[&str] =
    &["不好了", "没好", "又不", "还是不", "要是好了", "好了吗", "好了没", "if it works", "whether it works", "how it works",
      "nothing works", "never works"];

/// Courtesies: a turn of thanks needs no understanding, so the brain not matching an intent on
/// it is not a misunderstanding.
pub(crate) const COURTESY: &[&str] = &["thanks", "thank you", "cheers", "appreciate it", "谢谢", "感谢", "多谢"];

/// Answers that confirm a clarifying question ("Did you say your phone was stolen?").
pub(crate) const AFFIRM_EN: &[&str] = &[
    "yes", "yeah", "yep", "yup", "correct", "right", "thats right", "that is right", "exactly", "i did", "sure",
    "uh huh", "absolutely", "indeed", "definitely",
];
pub(crate) const AFFIRM_ZH: &[&str] = &["是", "对", "嗯", "没错", "是的", "对的", "对啊", "是啊", "就是", "当然", "确实"];

pub(crate) const ANGER_EN: &[&str] = &[
    "furious", "fed up", "sick of", "sick and tired", "pissed", "outrageous", "unacceptable", "ridiculous",
    "this is a joke", "useless", "rip off", "ripoff", "robbery", "robbing", "thieves", "disgusting",
    "worst company", "worst service", "i hate", "so angry", "im angry", "angry", "absolute joke", "waste of my time",
    "wasting my time", "incompetent", "pathetic", "shut up", "are you deaf", "stupid",
];
pub(crate) const ANGER_ZH: &[&str] = &[
    "气死", "受够了", "太过分", "骗子", "垃圾", "离谱", "坑人", "坑钱", "什么破", "破公司", "忍无可忍", "混蛋", "强盗",
    "欺负人", "太气人", "生气", "火大", "浪费我时间", "闭嘴", "听不懂人话", "有病", "恶心", "太差劲", "黑心",
];
pub(crate) const DISTRESS_EN: &[&str] = &[
    "emergency", "please help me", "im scared", "i am scared", "desperate", "panicking", "im crying",
    "i cant cope", "begging you", "life or death", "in danger",
];
pub(crate) const DISTRESS_ZH: &[&str] =
    &["救命", "紧急", "急死了", "求求你", "怎么办啊", "害怕", "崩溃", "哭了", "走投无路", "出事了", "危险"];
pub(crate) const DISTRESS_NOT_EN: &[&str] = &["emergency call", "emergency number"];
pub(crate) const DISTRESS_NOT_ZH: &[&str] = &["紧急联系人", "紧急呼叫"];

/// Short answers that refuse what the bot offered; several in a row mean the AI is not helping.
pub(crate) const REFUSAL_EN: &[&str] = &[
    "no", "nope", "not what i asked", "thats not what i", "thats wrong", "that is wrong", "wrong", "thats not it",
    "not helpful", "doesnt help", "didnt help",
];
/// Contain a refusal word without refusing ("是不是" asks, "no problem" agrees).
pub(crate) const REFUSAL_NOT: &[&str] = &[
    "no problem", "no worries", "no rush", "no hurry", "是不是", "不是很", "不是说", "不行的话", "要不要", "不要紧",
];
pub(crate) const REFUSAL_ZH: &[&str] = &["不是", "不对", "不行", "不要", "没用", "没有用", "不是这个", "答非所问", "错了"];

/// Risk lexicons, one per reason code.
pub(crate) const RISK_DISPUTE_EN: &[&str] = &[
    "refund", "money back", "dispute", "charged twice", "double charged", "overcharged me", "wrongly charged",
    "charged me wrongly", "unauthorized charge", "unauthorised charge", "charge back", "chargeback",
    "pay me back", "reverse the charge", "give back my money", "return my money",
];
pub(crate) const RISK_DISPUTE_ZH: &[&str] = &[
    "退款", "退钱", "退给我", "退回", "还给我", "乱扣费", "乱扣", "扣错", "重复扣费", "扣了两次", "多收了", "偷扣",
    "返还", "赔偿", "不认这笔",
];
pub(crate) const RISK_UNORDERED_EN: &[&str] = &[
    "never ordered", "didnt order", "did not order", "never signed up", "didnt sign up", "did not sign up",
    "never subscribed", "didnt subscribe", "never asked for", "didnt agree", "never agreed", "without my consent",
    "without my permission", "never authorized", "never authorised",
];
pub(crate) const RISK_UNORDERED_ZH: &[&str] = &[
    "没有订", "没订", "没有开通", "没开通", "不是我订", "不是我开", "从来没订", "没有同意", "没同意", "擅自", "私自开通",
    "莫名其妙", "没申请", "没有申请",
];
pub(crate) const RISK_CANCEL_EN: &[&str] = &[
    "cancel my contract", "cancel my account", "cancel my service", "cancel my line", "cancel my number",
    "terminate my contract", "close my account", "port my number", "port out", "switch carriers",
    "switch to another carrier", "switching to another", "leave your company", "go to another provider",
    "switch provider", "switch providers", "cancel everything",
];
pub(crate) const RISK_CANCEL_ZH: &[&str] =
    &["销户", "携号转网", "转网", "注销", "退网", "换运营商", "不用你们的", "解约", "销号", "转到移动", "转到联通", "转到电信"];
pub(crate) const RISK_REGULATOR_EN: &[&str] = &[
    "fcc", "regulator", "ombudsman", "consumer protection", "better business bureau", "attorney general",
    "report you to",
];
pub(crate) const RISK_REGULATOR_ZH: &[&str] = &["工信部", "消协", "消费者协会", "12315", "曝光", "市场监管", "通管局", "电信管理局"];
pub(crate) const RISK_COMPLAINT_EN: &[&str] =
    &["file a complaint", "make a complaint", "formal complaint", "complaint", "complain", "escalate this"];
pub(crate) const RISK_COMPLAINT_ZH: &[&str] = &["投诉", "举报", "讨个说法", "给个说法"];
pub(crate) const RISK_LEGAL_EN: &[&str] =
    &["lawyer", "attorney", "sue you", "sue your", "lawsuit", "legal action", "take you to court", "small claims", "court"];
pub(crate) const RISK_LEGAL_ZH: &[&str] = &["律师", "起诉", "法院", "告你们", "打官司", "法律途径", "诉讼"];
pub(crate) const RISK_FRAUD_EN: &[&str] = &[
    "fraud", "identity theft", "stole my identity", "stolen identity", "someone opened", "not me who",
    "wasnt me", "hacked", "sim swap", "someone used my", "scammer", "scammed",
];
pub(crate) const RISK_FRAUD_ZH: &[&str] =
    &["诈骗", "盗用", "冒用", "被盗", "身份证被", "不是我本人", "有人用我", "被骗", "骗了我", "盗刷", "被人办"];
pub(crate) const RISK_LOST_EN: &[&str] = &[
    "lost my phone", "phone was stolen", "stolen phone", "phone stolen", "phone got stolen", "lost phone",
    "block my sim", "suspend my number", "someone stole my phone", "stole my phone",
];
pub(crate) const RISK_LOST_ZH: &[&str] = &["手机丢了", "丢了手机", "手机被偷", "手机被盗", "挂失", "停机保号", "手机掉了", "偷了我的手机"];
pub(crate) const RISK_VULNERABLE_EN: &[&str] = &[
    "my father passed", "my mother passed", "passed away", "died", "dementia", "disabled", "disability",
    "im blind", "i am blind", "in hospital", "in the hospital", "cant afford to eat", "elderly", "im 85",
    "years old and", "cant read", "hard of hearing",
];
pub(crate) const RISK_VULNERABLE_ZH: &[&str] = &[
    "去世", "过世", "老年痴呆", "残疾", "住院", "看不见", "盲人", "不识字", "八十多岁", "七十多岁", "老人家", "失业了",
    "吃不上饭", "听力不好",
];
/// Phrases that sound risky but are ordinary questions.
pub(crate) const RISK_NOT_EN: &[&str] = &[
    "complaint number", "court street", "refund policy", "how long does a refund", "data roaming fraud protection",
];
pub(crate) const RISK_NOT_ZH: &[&str] = &["退回上一步", "投诉电话是多少"];
