//! Built-in trigger lexicons and the keyword matcher the triage detectors share.
//!
//! Matching reuses the brain's normalization ([`crate::brain::text`]): lowercase, punctuation
//! split into clauses, full-width folded, common traditional characters simplified, Chinese
//! keywords as substrings and other keywords on word boundaries; its one traditional → simplified
//! table covers triage's words too (订, 骗, 诈...). Added here are *exclusions*: phrases that
//! contain a trigger word without being a trigger ("an authorized agent store", "人工智能"); a
//! hit inside an exclusion span in the same clause is dropped.
//!
//! A keyword may also be a *pair*, written with an ellipsis ("手机…偷", "phone … stolen"): both
//! parts in one clause, in that order, a few words apart. Callers put words between a thing and
//! what happened to it ("我的手机刚才在地铁上被人偷走了"), and no list of whole phrases keeps up.

use crate::brain::sound::{self, Sound};
use crate::brain::text::{self, NegationWindow};

/// A keyword ready for matching.
#[derive(Debug, Clone)]
pub(crate) struct Kw {
    /// As the designer wrote it (shown in evidence).
    pub raw: String,
    /// Normalized, as matched.
    pub norm: String,
    pub cjk: bool,
    /// What it sounds like, for keywords long enough to match by sound (never for a pair).
    pub sound: Option<Sound>,
    /// A pair's second part, normalized: it must follow `norm` in the same clause within
    /// [`PAIR_GAP`].
    pub then: Option<String>,
}

/// How far apart a pair's parts may stand: words for English, characters for Chinese (counted
/// as the negation window counts them).
pub(crate) const PAIR_GAP: NegationWindow = NegationWindow { words: 6, chars: 10 };

/// Normalizes and keeps the usable keywords (a keyword of pure punctuation matches nothing).
pub(crate) fn compile<'a>(lists: impl IntoIterator<Item = &'a str>) -> Vec<Kw> {
    lists
        .into_iter()
        .filter_map(|raw| {
            let (first, then) = match raw.split_once('…').or_else(|| raw.split_once("...")) {
                Some((a, b)) => (a, Some(text::normalize_keyword(b)?)),
                None => (raw, None),
            };
            let norm = text::normalize_keyword(first)?;
            let cjk = text::has_cjk(&norm);
            let sound = if then.is_some() { None } else { Sound::of(&norm, cjk) };
            Some(Kw { raw: raw.to_string(), cjk, sound, norm, then })
        })
        .collect()
}

/// Where `kw` occurs in `clause`: (start, end) byte spans, a pair spanning both its parts.
fn occurrences(clause: &str, kw: &Kw) -> Vec<(usize, usize)> {
    let starts = text::find_all(clause, &kw.norm);
    let Some(then) = &kw.then else {
        if starts.is_empty() {
            return with_filler(clause, kw);
        }
        return starts.into_iter().map(|s| (s, s + kw.norm.len())).collect();
    };
    starts
        .into_iter()
        .filter_map(|s| {
            let from = s + kw.norm.len();
            let at = text::find_all(&clause[from..], then).into_iter().next()?;
            let (words, chars) = text::gap_units(&clause[from..from + at]);
            let limit = if kw.cjk { PAIR_GAP.chars } else { PAIR_GAP.words };
            (words + chars <= limit).then_some((s, from + at + then.len()))
        })
        .collect()
}

/// Words callers slip into a phrase without changing what it says: "charged *me* twice",
/// "扣了*我*两次". One of them may stand inside a keyword of two words or more (three characters
/// or more in Chinese); never a negation, so "not" still changes the phrase.
const FILLERS_EN: &[&str] =
    &["me", "my", "us", "our", "him", "her", "them", "it", "the", "a", "an", "this", "that", "just", "really", "actually", "even", "all"];
const FILLERS_ZH: &[&str] =
    &["我", "我们", "你", "你们", "他", "她", "他们", "了", "的", "都", "又", "也", "还", "就", "再", "给", "把"];

/// A clause's matching units with their byte offsets: words, and each Chinese character alone.
fn units(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut word: Option<usize> = None;
    for (i, c) in s.char_indices() {
        let cjk = text::is_cjk(c);
        if let Some(w) = word.filter(|_| cjk || c == ' ') {
            out.push((w, &s[w..i]));
            word = None;
        }
        if cjk {
            out.push((i, &s[i..i + c.len_utf8()]));
        } else if c != ' ' && word.is_none() {
            word = Some(i);
        }
    }
    if let Some(w) = word {
        out.push((w, &s[w..]));
    }
    out
}

/// Occurrences of a keyword with one filler word inside it ("charged me twice" for "charged
/// twice"), as (start, end) byte spans.
fn with_filler(clause: &str, kw: &Kw) -> Vec<(usize, usize)> {
    let want = units(&kw.norm);
    if want.len() < if kw.cjk { 3 } else { 2 } {
        return Vec::new();
    }
    let have = units(clause);
    let fillers: Vec<Vec<(usize, &str)>> =
        (if kw.cjk { FILLERS_ZH } else { FILLERS_EN }).iter().map(|f| units(f)).collect();
    let at = |i: usize, u: &str| have.get(i).is_some_and(|h| h.1 == u);
    let mut out = Vec::new();
    for start in 0..have.len() {
        let (mut i, mut filled) = (start, false);
        let mut matched = true;
        for (k, (_, u)) in want.iter().enumerate() {
            if at(i, u) {
                i += 1;
                continue;
            }
            // One filler, between two of the keyword's own units.
            let skip = (k > 0 && !filled)
                .then(|| fillers.iter().find(|f| f.iter().enumerate().all(|(j, (_, fu))| at(i + j, fu)) && at(i + f.len(), u)))
                .flatten();
            match skip {
                Some(f) => {
                    i += f.len() + 1;
                    filled = true;
                }
                None => {
                    matched = false;
                    break;
                }
            }
        }
        if matched && filled {
            let (last_at, last) = have[i - 1];
            out.push((have[start].0, last_at + last.len()));
        }
    }
    out
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
    /// Byte offset of the hit in `clause`.
    pub start: usize,
    pub cjk: bool,
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
            .flat_map(|e| occurrences(clause, e))
            .collect();
        for kw in kws {
            let exact = occurrences(clause, kw).into_iter().map(|(s, e)| (s, e, 1.0));
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
                let f = Found { kw: kw.raw.clone(), clause: clause.clone(), quality, heard, start, cjk: kw.cjk };
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
    kws.iter().any(|k| !occurrences(clause, k).is_empty())
}

/// True when a cue of `negation` stands before the hit close enough to decline it.
pub(crate) fn negated(f: &Found, negation: &Negation) -> bool {
    text::is_negated(&f.clause, f.start, f.cjk, &negation.cues, negation.window)
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

pub(crate) const NEGATION_EN: &[&str] = &[
    "dont", "do not", "not", "no need", "never", "without", "wont", "dont want", "doesnt", "didnt ask",
    // "This isn't a complaint": only right before what it declines ("If this isn't fixed I'm
    // taking you to court" still threatens).
    "isnt a", "isnt about", "arent a",
    // A request taken back in the same breath ("I was going to ask for an agent, but...").
    "was going to", "was about to", "was gonna", "was gonna ask", "i was thinking of",
];
pub(crate) const NEGATION_ZH: &[&str] =
    &["不用", "不要", "不需要", "不想", "别", "不必", "无需", "没必要", "用不着", "本来想", "原本想", "本想", "本来要",
      // Saying what the call is not ("我不是要投诉", "并不是想找人工").
      "不是要", "不是想", "并不是要", "并不是想", "没打算", "不打算", "不是来", "并不是来", "不是为了"];
/// Chinese negates a feeling with a bare 不 or 没 right before it ("我不生气", "我没生气", "并不是
/// 生气"). Too broad for the general cues (不能这样欺负人 is angry): only directly before the word,
/// with at most [`FEELING_NEGATION_GAP`] characters between ("不太生气").
pub(crate) const FEELING_NEGATION_ZH: &[&str] = &[
    "不", "没", "没有", "并不", "并没有", "不是", "并非",
    // Softened ("有点无语", "有点生气"): mild annoyance the AI can live with.
    "有点", "有一点", "有些", "稍微",
];
pub(crate) const FEELING_NEGATION_GAP: usize = 1;

pub(crate) const EXPLICIT_EN: &[&str] = &[
    "agent", "representative", "real person", "a human", "human being", "real human", "actual person", "actual human", "operator", "live person",
    "speak to someone", "talk to someone", "talk to a person", "speak to a person", "speak with someone",
    "customer service rep", "supervisor", "manager",
    // Somebody to talk to, however it is put ("is there anybody I can actually talk to?").
    "anybody … talk to", "anyone … talk to", "somebody … talk to", "someone … talk to",
    "anybody … speak to", "anyone … speak to", "somebody … speak to", "someone … speak to", "speak with a person",
    "talk to a human", "speak to a human", "put me through", "transfer me", "connect me to",
];
pub(crate) const EXPLICIT_ZH: &[&str] = &[
    "转人工", "人工客服", "人工服务", "人工", "真人", "客服人员", "接线员", "找个人", "活人", "工作人员", "主管", "经理",
    // Somebody who can decide ("给我找个能做主的").
    "能做主的", "负责人", "领导", "找个真人", "换个人", "管事的", "说了算的", "能拍板", "拍板的", "做得了主的",
];
/// Phrases that mention a trigger word without asking for a person.
pub(crate) const EXPLICIT_NOT_EN: &[&str] = &[
    "agent store", "agent shop", "authorized agent", "authorised agent", "agent outlet", "sales agent",
    "travel agent", "agent told me", "agent said", "an agent told", "the agent told", "talked to an agent",
    "spoke to an agent", "spoke with an agent", "network operator", "mobile operator", "operator fee",
    "am i talking to a real person", "is this a real person", "are you a real person", "are you a human",
    "account manager said", "store manager", "estate agent", "insurance agent", "booking agent", "shipping agent",
    "customs agent",
    // The caller is a manager ("I'm the manager of a little café").
    "im the manager", "i am the manager", "im a manager", "i am a manager", "im the … manager", "im a … manager",
    "i am the … manager",
    // The caller's own boss sent them ("my manager asked me to get an invoice").
    "my manager", "my supervisor", "my boss", "our manager", "our supervisor", "our office manager",
    // Asking what they are talking to is not asking to be put through.
    "are you a robot", "are you a bot", "are you a machine", "is this a robot", "is this a machine",
    "am i talking to a robot", "am i talking to a machine", "am i speaking to a real person",
    "am i speaking with a real person", "robot or a human", "bot or a human", "machine or a human",
    "human or a robot", "human or a machine", "real person or",
];
pub(crate) const EXPLICIT_NOT_ZH: &[&str] = &[
    "人工智能", "代理点", "代理商", "授权代理", "人工费", "刚才人工", "上次人工", "人工说", "你是真人吗", "是真人吗",
    "是不是真人", "工作人员说", "工作人员告诉", "经理说",
    // 你是机器人还是人工？ asks what the caller is talking to.
    "机器人还是人工", "机器人还是真人", "机器还是人工", "人工还是机器", "真人还是机器", "是人工吗", "是人工还是",
    "你是人工", "你是机器人",
    // The caller is one ("我是这家店的经理"); a place named for man-made things (人工湖).
    "我是…经理", "我是…店长", "我是…主管", "我是…负责人", "人工湖", "人工岛", "人工河", "人工草坪",
    // The caller's own boss sent them ("我们经理让我来开发票").
    "我们经理", "我们主管", "我们领导", "我们部门经理", "经理让我", "主管让我", "领导让我", "经理叫我", "主管叫我", "领导叫我",
];

/// Words that make a clause naming the human desk a question *about* it (its hours, whether it
/// is open) or a report of an earlier contact, rather than a request to be put through.
pub(crate) const EXPLICIT_INQUIRY_EN: &[&str] = &[
    "hours", "what time", "which time", "when are", "when is", "when do", "when does", "when can", "open on", "open at",
    "open until", "open till", "are open", "is open", "open today", "open tomorrow", "on sundays", "on weekends",
    "at weekends", "24 7", "around the clock", "twenty four hours",
    // Reported speech: what a person said before is not a request now.
    "last time", "told me", "explained", "talked to", "spoke to", "spoke with", "said he", "said she",
    // Whether a person is needed, or there later, is a question about the desk.
    "do i need to", "do i have to", "would i need to", "is it necessary", "how long", "wait time", "usually",
    "if i wanted", "if i want", "later today", "tonight", "tomorrow", "this evening", "in the morning", "not now",
];
pub(crate) const EXPLICIT_INQUIRY_ZH: &[&str] = &[
    "几点", "时间", "什么时候", "上班", "下班", "营业", "二十四小时", "24小时", "周末", "节假日", "几时", "开放", "开门",
    "关门",
    // Reported speech: what a person said before is not a request now. A time before now and
    // a verb of saying: "叫你们经理来跟我说话" is a request, "之前那个人工跟我说…" a report.
    "之前…说", "上次…说", "以前…说", "上回…说", "说过", "答应过", "承诺过",
    // Someone reached a person before ("她去年找过你们主管").
    "找过", "联系过", "打过", "问过", "去年", "上个月",
    // How long the wait is, whether a person is there later, whether one is needed.
    "多久", "要等", "排队", "一般", "晚上", "夜里", "凌晨", "早上", "上午", "下午", "明天", "星期", "点以后", "点之后",
    "不是现在", "先问问", "需要…吗", "必须…吗", "得…吗",
];

/// The caller says the problem is gone: the troubleshooting loop that led there was progress,
/// not confusion.
pub(crate) const RESOLVED_EN: &[&str] = &[
    "it works", "it worked", "its working", "working again", "works again", "works now", "working now",
    "back to normal", "its fixed", "fixed now", "thats fixed", "all sorted", "sorted now", "problem solved",
    "thats solved", "all good now", "its back", "back online", "that did it", "that did the trick", "works",
    "working fine", "fine now", "got sorted", "was sorted", "been sorted", "got resolved", "was resolved", "been fine",
];
pub(crate) const RESOLVED_ZH: &[&str] =
    &["好了", "能用了", "正常了", "可以用了", "恢复了", "解决了", "能上网了", "没问题了", "修好了", "通了", "稳定了", "没事了", "好使了"];
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
    "this is a joke", "useless", "rip off", "ripoff", "robbery",
    // Robbing someone, not "robbing" alone: it is what a recognizer makes of "dropping out".
    "robbing me", "robbing us", "robbing people", "robbing customers", "robbing your customers", "thieves", "disgusting",
    "worst company", "worst service", "i hate", "so angry", "im angry", "angry", "absolute joke", "waste of my time",
    "wasting my time", "incompetent", "pathetic", "shut up", "are you deaf", "stupid",
    "unbelievable", "enough is enough", "had enough", "ive had it", "nobody cares", "no one cares", "how dare",
    "disgrace", "disgraceful", "fuming", "livid", "appalling", "shocking service", "terrible service",
    "awful service", "what the hell", "joke of a company", "you lied", "lied to me", "liars", "so disappointed",
    "very disappointed", "really disappointed", "extremely disappointed", "deeply disappointed", "not listening",
    // Past being polite about it.
    "done being polite", "lost my patience", "losing my patience", "end of my tether", "beyond a joke",
    "chat with a toaster", "talking to a toaster", "end of my rope", "wits end",
    // Sarcasm that opens on feigned delight ("Oh wonderful, another robot").
    "oh wonderful", "oh great", "oh brilliant", "oh fantastic", "oh perfect", "oh lovely", "just what i needed",
    "thanks for nothing", "top notch service", "brilliant service really",
];
pub(crate) const ANGER_ZH: &[&str] = &[
    "气死", "受够了", "太过分", "骗子", "垃圾", "离谱", "坑人", "坑钱", "什么破", "破公司", "忍无可忍", "混蛋", "强盗",
    "欺负人", "太气人", "生气", "火大", "浪费我时间", "闭嘴", "听不懂人话", "有病", "恶心", "太差劲", "黑心",
    "不像话", "岂有此理", "什么玩意", "无语", "搞什么", "有没有人管", "没人管", "忍不了", "烦死了", "太差了", "敷衍",
    "糊弄", "耍我", "骗人", "什么服务态度", "什么态度", "这是什么服务", "态度太差", "服务态度差", "很失望", "太失望", "非常失望", "特别失望", "失望透顶", "让人失望", "凭什么",
    // Sarcasm and futility: praise said through the teeth, "what's the use talking to you".
    "可真行", "真行啊", "气笑", "想不想干", "干什么吃的", "有没有搞错", "不负责任", "说有什么用", "算是见识了", "好欺负", "火很大", "很火大", "火气很大",
];
/// A feeling word that is not the caller's anger at us: junk ("垃圾短信"), or somebody else's
/// feeling ("他挺生气的", "she was angry").
pub(crate) const ANGER_NOT: &[&str] = &[
    "垃圾短信", "垃圾邮件", "垃圾电话", "垃圾广告", "垃圾信息", "垃圾桶", "垃圾分类", "他…生气", "她…生气", "他们…生气",
    "他…火大", "她…火大", "他…气死", "她…气死", "he was angry", "she was angry", "he is angry", "she is angry",
    "hes angry", "shes angry", "he got angry", "she got angry", "they were angry", "he was furious", "she was furious",
    "junk mail", "junk texts", "spam texts",
    // The caller's own feeling, over: "last week I was properly fed up, but it's been fine since".
    "i was fed up", "i was so fed up", "i was properly fed up", "i was really fed up", "we were fed up", "i was furious",
    "i was so angry", "i was angry", "i was really angry", "i was livid", "i was fuming", "we were furious",
    "当时…生气", "当时…火大", "之前…生气", "那时候…生气", "那会儿…生气",
];
pub(crate) const DISTRESS_EN: &[&str] = &[
    "emergency", "please help me", "im scared", "i am scared", "desperate", "panicking", "im crying",
    "i cant cope", "begging you", "life or death", "in danger", "scared", "terrified", "frightened", "worried sick",
    // Tears that do not stop; at a loss for what to do next.
    "cant stop crying", "been crying", "in tears", "breaking down", "dont know what to do anymore",
];
pub(crate) const DISTRESS_ZH: &[&str] =
    &["救命", "紧急", "急死了", "求求你", "怎么办啊", "害怕", "崩溃", "哭了", "走投无路", "出事了", "危险", "一直哭", "止不住地哭",
      "不知道该怎么办了", "不知道怎么办了"];
pub(crate) const DISTRESS_NOT_EN: &[&str] = &["emergency call", "emergency number"];
pub(crate) const DISTRESS_NOT_ZH: &[&str] = &["紧急联系人", "紧急呼叫"];

/// Said after a request in the same breath, they take it back ("Can I speak to a person?
/// Actually no, never mind", "我要转人工……哦不用了").
pub(crate) const TAKE_BACK: &[&str] = &[
    "never mind", "nevermind", "actually no", "forget it", "scratch that", "no wait", "on second thought",
    "lets see if you", "see if you can", "try you first", "不用了", "算了", "不转了", "还是不用", "不需要了", "先不用",
    "先问问你", "还是先问",
];

/// Somebody else's story: a risk word in a clause about a friend, a colleague or a neighbour
/// ("我同事前阵子携号转网了", "my friend had her phone stolen") is a mention, unless the rest of
/// the clause comes back to the caller ("我朋友用我的身份证办了卡").
pub(crate) const THIRD_PARTY: &[&str] = &[
    // Theirs, not "a colleague of yours" (one of our staff, asked for).
    "my friend", "friend of mine", "my colleague", "my coworker", "my workmate",
    "my neighbour", "my neighbor", "朋友", "同事", "邻居", "别人家",
    // News and hearsay about other people ("I read an article about fraud texts").
    "an article", "in the news", "on the news", "read about", "heard about", "新闻", "报道", "网上看到",
];
pub(crate) const OWN: &[&str] = &["my", "me", "mine", "我"];

/// The caller says they do not follow.
pub(crate) const CONFUSED_EN: &[&str] = &[
    "confused", "confusing", "not following", "dont understand", "do not understand", "dont get it", "lost me",
    "makes no sense", "doesnt make sense", "what does that mean", "im lost",
];
pub(crate) const CONFUSED_ZH: &[&str] =
    &["听不懂", "不明白", "没听懂", "搞不懂", "糊涂", "看不懂", "什么意思", "晕了", "没明白", "弄不明白", "搞不清"];

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
    "without my permission", "never authorized", "never authorised", "didnt ask for", "did not ask for",
    // Nobody in the household did it ("nobody in this house signed up for that").
    "nobody … signed up", "no one … signed up", "none of us … signed up", "nobody … ordered", "no one … ordered",
    "nobody … subscribed", "no one … subscribed", "nobody … asked for", "no one … asked for",
];
pub(crate) const RISK_UNORDERED_ZH: &[&str] = &[
    "没有订", "没订", "没有开通", "没开通", "不是我订", "不是我开", "从来没订", "没有同意", "没同意", "擅自", "私自开通",
    "莫名其妙", "没申请", "没有申请", "没办过", "没有办过", "从来没办", "没开过", "没订过", "不是我办",
];
pub(crate) const RISK_CANCEL_EN: &[&str] = &[
    "cancel my contract", "cancel my account", "cancel my service", "cancel my line", "cancel my number",
    "terminate my contract", "close my account", "port my number", "port out", "switch carriers",
    "switch to another carrier", "switching to another", "leave your company", "go to another provider",
    "switch provider", "switch providers", "cancel everything",
    // The number or the business taken elsewhere, the code that does it.
    "pac code", "porting code", "number … elsewhere", "business … elsewhere", "switch networks", "switching networks",
    "move to another network", "moving to another network", "going to another network", "porting my number",
    "moving my number", "unless you match", "or im leaving", "im leaving you", "cancel my broadband",
    "cancel my internet", "cancel my plan", "signed up with someone else", "signed up with another", "going with someone else",
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
    &["sue you", "sue your", "lawsuit", "legal action",
      // The caller's own lawyer set on us, not one who needs papers for a mortgage.
      "my lawyer … will", "my lawyer … going to", "my lawyer … in touch", "my lawyer … contact", "hear from my lawyer",
      "my lawyers … will", "my attorney … will", "my solicitor … will", "hear from my attorney", "hear from my solicitor",
      "take you to court", "small claims", "court", "legal advice",
      // A lawyer brought in, not one in the family ("my sister's a lawyer").
      "get … lawyer", "getting … lawyer", "call … lawyer", "contact … lawyer", "see … lawyer", "speak to … lawyer",
      "talk to … lawyer", "consult … lawyer", "hire … lawyer", "lawyer … involved", "lawyers … involved",
      "get … attorney", "call … attorney", "contact … attorney", "hire … attorney", "speak to … attorney"];
pub(crate) const RISK_LEGAL_ZH: &[&str] = &["律师", "起诉", "法院", "告你们", "打官司", "法律途径", "诉讼"];
pub(crate) const RISK_FRAUD_EN: &[&str] = &[
    "fraud", "identity theft", "stole my identity", "stolen identity", "someone opened", "not me who",
    "wasnt me", "hacked", "sim swap", "someone used my", "scammer", "scammed",
    "someone … using my", "somebody … using my", "someone … used my", "somebody … used my", "somebody opened",
    "ported my number", "ported out my number", "number was ported", "number got ported",
    "taken over my number", "took over my number", "hijacked", "swapped my sim", "sim … swapped",
    "gave … the code", "gave … verification code", "told … the code", "read out the code", "pretending to be from",
    "claimed to be from", "said they were from",
    // A caller who claimed to be us, and what they asked for.
    "saying hes from", "saying he was from", "saying she was from", "saying shes from", "said he was from",
    "said she was from", "says hes from", "says shes from", "claiming to be from", "read him the", "read her the",
    "read them the",
    // Money gone from the caller's account.
    "money … missing from", "money … gone from", "money … disappeared", "money … taken from my",
];
pub(crate) const RISK_FRAUD_ZH: &[&str] =
    &["号码被…转走", "号码被人", "诈骗", "盗用",
      // A code read out to a caller who claimed to be us: the account is being taken.
      "验证码…告诉", "验证码…给了", "验证码…念给", "验证码…发给", "说是你们客服", "自称客服", "冒充客服", "冒用", "冒充", "冒名", "假冒", "被盗", "身份证被", "不是我本人", "有人用我", "被骗", "骗了我", "盗刷", "被人办",
      // Money gone from the caller's account.
      "钱少了", "钱不见了", "钱被转走", "钱被划走", "验证码…报给"];
pub(crate) const RISK_LOST_EN: &[&str] = &[
    "lost my phone", "phone was stolen", "stolen phone", "phone stolen", "phone got stolen", "lost phone",
    "block my sim", "someone stole my phone", "stole my phone",
    // The phone and what happened to it, a few words apart.
    "phone … stolen", "phone … nicked", "phone … snatched", "mobile … stolen", "stole … phone", "snatched … phone",
    "nicked … phone", "grabbed … phone", "lost my … phone", "lost my … mobile",
];
pub(crate) const RISK_LOST_ZH: &[&str] = &[
    "手机丢了", "丢了手机", "手机被偷", "手机被盗", "挂失", "手机掉了", "偷了我的手机",
    "手机…偷", "手机…盗", "手机…抢", "手机…丢了", "手机…不见了", "偷…手机", "抢…手机", "手机卡…丢",
];
pub(crate) const RISK_VULNERABLE_EN: &[&str] = &[
    "my father passed", "my mother passed", "passed away", "dementia", "disabled", "disability", "im blind", "i am blind",
    // A person who died, not a phone or a line that did ("my internet's died").
    "father … died", "mother … died", "dad … died", "mum … died", "mom … died", "husband … died", "wife … died",
    "son … died", "daughter … died", "partner … died", "brother … died", "sister … died", "who died",
    // The caller in hospital (a relative there makes an upset caller, not one at risk).
    "im in hospital", "i am in hospital", "im in the hospital", "i am in the hospital", "hospital bed",
    "cant afford to eat", "elderly", "im 85",
    "years old and", "cant read", "hard of hearing",
];
pub(crate) const RISK_VULNERABLE_ZH: &[&str] = &[
    "去世", "过世", "老年痴呆", "残疾", "住院", "看不见", "盲人", "不识字", "八十多岁", "七十多岁", "老人家", "失业了",
    "吃不上饭", "听力不好",
];
/// Phrases that sound risky but are ordinary questions.
pub(crate) const RISK_NOT_EN: &[&str] = &[
    "complaint number", "court street", "refund policy", "how long does a refund", "data roaming fraud protection",
    // A profession or a past complaint mentioned, not a threat made now.
    "is a lawyer", "am a lawyer", "im a lawyer", "as a lawyer", "was a lawyer", "law firm", "law office",
    "complaint … sorted",
    "complaint … resolved", "complaint … fixed", "complaint … handled", "last complaint", "previous complaint",
    "earlier complaint", "complaint from last",
    // Places named after a court.
    "fraud alert", "scam alert", "early termination fee", "cancellation fee", "cost to cancel", "how much … to cancel", "cancel … extra line", "cancel … second line", "cancel … additional line",
    "court road", "court lane", "court avenue", "court drive", "court way", "court close", "court place",
    "food court", "tennis court", "basketball court", "court yard",
    // Where a port the caller asked for has got to: a question about its progress.
    "port … progress", "porting … progress", "status of my port", "progress of my port",
];
/// Words that make a refund a question about policy ("Do I get a refund automatically if…",
/// "我就问问"): anywhere in the utterance.
pub(crate) const DISPUTE_INQUIRY: &[&str] = &[
    "just asking", "just wondering", "just curious", "out of curiosity", "policy", "automatically", "in general",
    "generally", "hypothetically", "do i get a refund", "would i get a refund", "will i get a refund",
    "is there a refund", "are refunds", "how do refunds", "how long do refunds",
    // Hearsay: a refund someone else got, asked about.
    "friend said", "friends said", "colleague said", "neighbour said", "neighbor said", "someone said", "i heard",
    "heard that", "听说", "朋友说", "别人说", "同事说", "邻居说", "真的假的", "就问问", "随便问问", "问一下",
    "咨询一下", "了解一下", "政策", "规定", "一般",
];
/// A hypothetical about the caller's own doing ("if I stop it halfway", "没用完的话") makes a
/// refund in the same clause a question about policy. English names the subject ("if I", not
/// "if you don't refund me"); Chinese conditions don't, so a condition on the company's refusal
/// ([`HYPOTHETICAL_THREAT`]: "不退钱的话", "如果你们不给我退款") keeps it a demand.
pub(crate) const HYPOTHETICAL: &[&str] = &["if i", "if we", "what if i", "what happens if i", "的话", "要是", "假如", "如果", "万一"];
/// A risk supposed in a question ("how would I block my SIM if it happened to me?", "万一手机丢了
/// 怎么办"): asked about, not happening. Narrower than [`HYPOTHETICAL`]: "if I don't hear back
/// today I'm calling my lawyer" is a threat.
pub(crate) const SUPPOSING: &[&str] = &[
    "how would i", "what would i", "what should i do if", "what do i do if", "what happens if", "if it happened",
    "if that happened", "if it ever", "just in case", "万一", "假如", "要是…怎么办", "如果…怎么办",
];
/// With [`OWN`], the words by which a clause speaks of the caller, ending somebody else's story
/// told before it ("…and I was scammed the same way").
pub(crate) const SPEAKER: &[&str] = &["i", "im", "ive", "id", "we", "us", "our"];
pub(crate) const HYPOTHETICAL_THREAT: &[&str] =
    &["不退", "不给", "不还", "不赔", "不解决", "不处理", "不把", "再不", "你们不", "不马上", "不能退", "不肯", "不同意"];
pub(crate) const RISK_NOT_ZH: &[&str] = &[
    "退回上一步", "投诉电话是多少", "律师事务所", "律所", "是律师", "当律师", "做律师", "上次投诉", "之前投诉", "投诉过",
    "投诉…解决了", "投诉…处理好了", "投诉…处理完了", "投诉完",
    // A complaint to or about somebody else ("在物业那边投诉").
    "物业…投诉", "投诉…物业", "快递…投诉", "投诉…快递", "外卖…投诉", "投诉…外卖", "商家…投诉", "投诉…商家",
    // What leaving early costs, asked about.
    "解约…违约金", "违约金…解约", "解约…多少钱", "解约…费用", "注销…多少钱", "注销…费用",
    // An anti-fraud feature asked about; a secondary line closed.
    "防诈骗", "反诈骗", "防骗", "反诈", "注销…副卡", "副卡…注销", "注销…副号", "副号…注销", "注销…附属卡",
    // Places named after a court; the progress of a port already asked for.
    "法院街", "法院路", "法院东", "法院西", "法院南", "法院北", "法院附近", "法院旁边", "法院对面", "转网…进度", "进度…转网",
];

/// A refund that has come ("the refund landed this morning", "退款今天到账了"): thanks, not a
/// demand, unless it has not ([`NOT_YET`]).
pub(crate) const REFUND_ARRIVED: &[&str] = &[
    "landed", "arrived", "came through", "came in", "went through", "received", "got the refund", "got my refund",
    "到账", "收到", "退回来了",
];
pub(crate) const NOT_YET: &[&str] = &["not", "never", "hasnt", "havent", "hadnt", "didnt", "yet", "still", "没", "未"];

/// A complaint the caller made before ("I made a complaint back in March"): settled when the
/// utterance also says it was resolved.
pub(crate) const PAST_COMPLAINT: &[&str] = &[
    "made a complaint", "filed a complaint", "lodged a complaint", "raised a complaint", "i complained", "we complained",
    "投诉过", "之前投诉", "上次投诉", "以前投诉",
];

/// A caller saying again what they said ("like I said, it drops every evening"): a repeat,
/// however differently worded.
pub(crate) const RESTATING: &[&str] = &[
    "like i said", "as i said", "as i told you", "i already told you", "i already said", "ive already said",
    "ive told you", "i told you already", "我说了", "我都说了", "我刚才说了", "我已经说了", "我说过了", "跟你说了",
];

/// Business that needs a person with authority: a formal tender or procurement, a stamped quote.
pub(crate) const BUSINESS_PROCUREMENT: &[&str] = &[
    "tender", "procurement", "purchase order", "request for proposal", "rfp", "invitation to bid", "招投标", "投标", "招标",
    "公章", "盖章", "采购流程",
];
