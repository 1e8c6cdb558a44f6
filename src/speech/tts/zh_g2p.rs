//! Mandarin text → the phoneme symbols Kokoro was trained on for Chinese.
//!
//! 1. [`zh_normalize`](super::zh_normalize) spells out digits and symbols.
//! 2. jieba segments the text into words; each word gets pinyin from a small table of words
//!    whose reading differs from the character's most common one (银行 háng, 还款 huán) and
//!    from the `pinyin` crate otherwise.
//! 3. Neutral tones (particles, 们/么 suffixes, reduplications, a list of common words) and tone
//!    sandhi: 3-3 → 2-3 inside a word and between a one-syllable word and its neighbour;
//!    不 before a fourth tone → bú; 一 → yí before a fourth tone, yì before others, yī when
//!    counted, ordinal or at the end.
//! 4. Each syllable becomes broad IPA in the convention of misaki's Chinese G2P (the one
//!    Kokoro v1.0 was trained with): aspirated stops with ʰ, ꭧ for zh, ɨ for the apical vowel
//!    of zi/zhi, the tone as an arrow after the syllable's vowel (→ ↗ ↓ ↘, none for neutral),
//!    words separated by spaces, Chinese punctuation as ASCII.
//!
//! Latin letters (5G, VIP) are spelled with English letter names in Kokoro's English symbols.
//! Sans-IO: the only state is the jieba dictionary, loaded once per process.

use std::sync::OnceLock;

use jieba_rs::Jieba;
use pinyin::ToPinyin;

use super::zh_normalize::normalize;

/// A syllable: pinyin without tone ("zhong", "lü") and its tone, 1-4, or 5 for neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syllable {
    pub pinyin: String,
    pub tone: u8,
    /// The character it was read from (sandhi of 一 and 不 depends on it).
    pub hanzi: char,
}

impl Syllable {
    fn numbered(&self) -> String {
        format!("{}{}", self.pinyin, self.tone)
    }
}

/// Words whose reading is not the characters' default reading (polyphones in context) or
/// that carry a neutral tone. Space-separated numbered pinyin, 5 = neutral.
const WORDS: &[(&str, &str)] = &[
    ("银行", "yin2 hang2"),
    ("行业", "hang2 ye4"),
    ("还款", "huan2 kuan3"),
    ("归还", "gui1 huan2"),
    ("退还", "tui4 huan2"),
    ("还钱", "huan2 qian2"),
    ("还是", "hai2 shi4"),
    ("还有", "hai2 you3"),
    ("还在", "hai2 zai4"),
    ("还没", "hai2 mei2"),
    ("还剩", "hai2 sheng4"),
    ("重新", "chong2 xin1"),
    ("重复", "chong2 fu4"),
    ("重置", "chong2 zhi4"),
    ("了解", "liao3 jie3"),
    ("为您", "wei4 nin2"),
    ("为了", "wei4 le5"),
    ("因为", "yin1 wei4"),
    ("为什么", "wei4 shen2 me5"),
    ("作为", "zuo4 wei2"),
    ("认为", "ren4 wei2"),
    ("成为", "cheng2 wei2"),
    ("行为", "xing2 wei2"),
    ("长度", "chang2 du4"),
    ("增长", "zeng1 zhang3"),
    ("都是", "dou1 shi4"),
    ("首都", "shou3 du1"),
    ("觉得", "jue2 de5"),
    ("得到", "de2 dao4"),
    ("记得", "ji4 de5"),
    ("便宜", "pian2 yi5"),
    ("数据", "shu4 ju4"),
    ("调整", "tiao2 zheng3"),
    ("空调", "kong1 tiao2"),
    ("转接", "zhuan3 jie1"),
    ("处理", "chu3 li3"),
    ("地方", "di4 fang5"),
    ("时候", "shi2 hou5"),
    ("东西", "dong1 xi5"),
    ("先生", "xian1 sheng5"),
    ("朋友", "peng2 you5"),
    ("客气", "ke4 qi5"),
    ("麻烦", "ma2 fan5"),
    ("清楚", "qing1 chu5"),
    ("明白", "ming2 bai5"),
    ("知道", "zhi1 dao5"),
    ("意思", "yi4 si5"),
    ("关系", "guan1 xi5"),
    ("事情", "shi4 qing5"),
    ("告诉", "gao4 su5"),
    ("多少", "duo1 shao5"),
    ("名字", "ming2 zi5"),
    ("早上", "zao3 shang5"),
    ("晚上", "wan3 shang5"),
    ("什么", "shen2 me5"),
    ("怎么", "zen3 me5"),
    ("这么", "zhe4 me5"),
    ("那么", "na4 me5"),
    ("一下", "yi2 xia5"),
    ("看一下", "kan4 yi2 xia5"),
    ("有没有", "you3 mei5 you3"),
    ("是不是", "shi4 bu5 shi4"),
    ("要不要", "yao4 bu5 yao4"),
    ("对不起", "dui4 bu5 qi3"),
    ("不了", "bu4 liao3"),
    ("结果", "jie2 guo3"),
    ("号码", "hao4 ma3"),
    ("流量", "liu2 liang4"),
    ("套餐", "tao4 can1"),
    ("宽带", "kuan1 dai4"),
    ("话费", "hua4 fei4"),
    ("差不多", "cha4 bu5 duo1"),
    ("大部分", "da4 bu4 fen5"),
    ("部分", "bu4 fen5"),
    ("应该", "ying1 gai1"),
    ("答应", "da1 ying5"),
    ("答案", "da2 an4"),
    ("回答", "hui2 da2"),
    ("几点", "ji3 dian3"),
    ("几个", "ji3 ge5"),
    ("上不了", "shang4 bu4 liao3"),
];

/// Characters read differently from the `pinyin` crate's first reading when they stand
/// alone or in a word not listed above.
const CHARS: &[(char, &str)] = &[
    ('还', "hai2"),
    ('了', "le5"),
    ('的', "de5"),
    ('着', "zhe5"),
    ('吗', "ma5"),
    ('呢', "ne5"),
    ('吧', "ba5"),
    ('啊', "a5"),
    ('呀', "ya5"),
    ('嘛', "ma5"),
    ('啦', "la5"),
    ('么', "me5"),
    ('们', "men5"),
    ('得', "de5"),
    ('地', "di4"),
    ('个', "ge4"),
    ('为', "wei4"),
    ('都', "dou1"),
    ('长', "chang2"),
    ('行', "xing2"),
    ('重', "zhong4"),
    ('转', "zhuan3"),
    ('差', "cha4"),
    ('数', "shu4"),
    ('便', "bian4"),
    ('量', "liang4"),
    ('分', "fen1"),
    ('处', "chu4"),
    ('号', "hao4"),
    ('幺', "yao1"),
    ('一', "yi1"),
    ('不', "bu4"),
    ('哦', "o5"),
    ('嗯', "en4"),
];

/// Reduplications that keep both full tones (adverbs), unlike 谢谢 and 看看.
const FULL_REDUPLICATIONS: &[&str] = &["常常", "刚刚", "天天", "人人", "渐渐", "慢慢", "好好", "偷偷", "往往", "轻轻"];

/// Number characters: 一 among them is read yī (十一, 一二三).
const NUMERALS: &str = "零一二三四五六七八九十幺两";

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(|| {
        let mut j = Jieba::new();
        // Service words jieba would split: one word, one prosodic unit.
        for w in ["转人工", "光猫", "加油包", "话费", "流量包", "指示灯", "营业厅", "细光纤"] {
            j.add_word(w, Some(100_000), None);
        }
        j
    })
}

/// `text` cut into jieba words with their part-of-speech tags ("n", "v", "p", "uj", "x"…):
/// (byte start, byte end, tag), in order, covering the whole text. Used to find the phrase
/// boundaries a reply can be spoken from.
pub(super) fn tagged_words(text: &str) -> Vec<(usize, usize, &str)> {
    jieba().tag(text, true).into_iter().map(|t| (t.byte_start, t.byte_end, t.tag)).collect()
}

/// Parses numbered pinyin ("hang2", "de5", "de").
fn parse_numbered(s: &str, hanzi: char) -> Syllable {
    let (body, tone) = match s.chars().last().and_then(|c| c.to_digit(10)) {
        Some(t) => (&s[..s.len() - 1], t as u8),
        None => (s, 5),
    };
    Syllable { pinyin: body.replace('v', "ü"), tone: if (1..=5).contains(&tone) { tone } else { 5 }, hanzi }
}

/// The pinyin of one jieba word, before sandhi.
fn word_syllables(word: &str) -> Vec<Syllable> {
    let chars: Vec<char> = word.chars().collect();
    if let Some((_, py)) = WORDS.iter().find(|(w, _)| *w == word) {
        let parts: Vec<&str> = py.split_whitespace().collect();
        if parts.len() == chars.len() {
            return parts.iter().zip(&chars).map(|(p, &c)| parse_numbered(p, c)).collect();
        }
    }
    let mut out: Vec<Syllable> = chars
        .iter()
        .map(|&c| match CHARS.iter().find(|(h, _)| *h == c) {
            Some((_, py)) => parse_numbered(py, c),
            None => match c.to_pinyin() {
                Some(p) => parse_numbered(p.with_tone_num_end(), c),
                None => Syllable { pinyin: String::new(), tone: 5, hanzi: c },
            },
        })
        .collect();
    let n = out.len();
    if n > 1 {
        // Reduplicated verbs and kinship nouns: the second syllable is neutral.
        if n == 2 && chars[0] == chars[1] && !FULL_REDUPLICATIONS.contains(&word) && !NUMERALS.contains(chars[0]) {
            out[1].tone = 5;
        }
        // Suffixes 们, 么, 子 (after a noun root: 孩子, 桌子; 电子 and 分子 keep theirs).
        if matches!(chars[n - 1], '们' | '么') || (chars[n - 1] == '子' && !matches!(chars[n - 2], '电' | '分' | '原' | '因' | '量' | '孔' | '男' | '女' | '君')) {
            out[n - 1].tone = 5;
        }
    }
    out
}

/// Tone sandhi over one run of Chinese text; `word_ends[i]` marks the last syllable of a word.
fn sandhi(syl: &mut [Syllable], word_ends: &[bool], word_starts: &[bool]) {
    let n = syl.len();
    // 不 and 一 first: their new tones decide the 3-3 pairs after them.
    for i in 0..n {
        let next_tone = syl.get(i + 1).map(|s| s.tone);
        match syl[i].hanzi {
            '不' => {
                if next_tone == Some(4) {
                    syl[i].tone = 2;
                }
            }
            '一' => {
                let prev = if i > 0 { Some(syl[i - 1].hanzi) } else { None };
                let next = syl.get(i + 1).map(|s| s.hanzi);
                let counted = prev.is_some_and(|p| NUMERALS.contains(p) || p == '第' || p == '按' || p == '周' || p == '星')
                    || next.is_some_and(|c| "零一二三四五六七八九幺月号日楼层点".contains(c))
                    || next.is_none();
                if counted {
                    syl[i].tone = 1;
                } else if next_tone == Some(4) || (next_tone == Some(5) && next == Some('个')) {
                    syl[i].tone = 2;
                } else if next_tone.is_some() {
                    syl[i].tone = 4;
                }
            }
            _ => {}
        }
    }
    // 3-3 inside a word: every third tone before another one rises (展览馆: 2-2-3), judged
    // on the tones before this rule so a risen syllable does not shield the one before it.
    let before: Vec<u8> = syl.iter().map(|s| s.tone).collect();
    for i in 0..n.saturating_sub(1) {
        if !word_ends[i] && before[i] == 3 && before[i + 1] == 3 {
            syl[i].tone = 2;
        }
    }
    // ...and across a word boundary when either word is one syllable (我想, 你好吗).
    for i in 0..n.saturating_sub(1) {
        let short = word_starts[i] || word_ends.get(i + 1).copied().unwrap_or(false);
        if word_ends[i] && short && syl[i].tone == 3 && syl[i + 1].tone == 3 {
            syl[i].tone = 2;
        }
    }
}

/// Pinyin with tones after sandhi, one string per syllable ("ni2", "hao3"), for a text
/// already normalized. Non-Chinese characters are dropped. Mainly for tests and logs.
pub fn pinyin(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seg in segments(&normalize(text)) {
        if let Segment::Han(words) = seg {
            out.extend(words.iter().flatten().map(Syllable::numbered));
        }
    }
    out
}

enum Segment {
    /// Words of syllables after sandhi.
    Han(Vec<Vec<Syllable>>),
    Latin(String),
    Punct(char),
    Space,
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let mut j = i + 1;
        if is_han(c) {
            while j < chars.len() && is_han(chars[j].1) {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            out.push(Segment::Han(han_run(&text[start..end])));
        } else if c.is_ascii_alphabetic() {
            while j < chars.len() && chars[j].1.is_ascii_alphabetic() {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            out.push(Segment::Latin(text[start..end].to_string()));
        } else if let Some(p) = punctuation(c) {
            out.push(Segment::Punct(p));
        } else if c.is_whitespace() {
            out.push(Segment::Space);
        }
        // Anything else (emoji, symbols without a reading) is not spoken.
        i = j;
    }
    out
}

fn han_run(run: &str) -> Vec<Vec<Syllable>> {
    let words: Vec<Vec<Syllable>> = jieba().cut(run, true).iter().map(|t| word_syllables(t.word)).collect();
    let mut flat: Vec<Syllable> = Vec::new();
    let (mut ends, mut starts) = (Vec::new(), Vec::new());
    for w in &words {
        for (k, s) in w.iter().enumerate() {
            flat.push(s.clone());
            starts.push(k == 0);
            ends.push(k + 1 == w.len());
        }
    }
    sandhi(&mut flat, &ends, &starts);
    let mut it = flat.into_iter();
    words.iter().map(|w| it.by_ref().take(w.len()).collect()).collect()
}

/// Chinese and ASCII punctuation as the ASCII mark Kokoro knows.
fn punctuation(c: char) -> Option<char> {
    Some(match c {
        '，' | '、' | ',' => ',',
        '。' | '．' | '.' => '.',
        '！' | '!' => '!',
        '？' | '?' => '?',
        '；' | ';' => ';',
        '：' | ':' => ':',
        '—' | '…' => c,
        '（' | '(' => '(',
        '）' | ')' => ')',
        '“' | '”' | '「' | '」' | '《' | '》' | '"' => '"',
        _ => return None,
    })
}

/// Kokoro phonemes of Mandarin `text` (any text: it is normalized first).
pub fn phonemes(text: &str) -> String {
    let mut out = String::new();
    for seg in segments(&normalize(text)) {
        match seg {
            Segment::Han(words) => {
                for w in words {
                    let ipa: String = w.iter().map(syllable_ipa).collect();
                    if ipa.is_empty() {
                        continue;
                    }
                    if !out.is_empty() && !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push_str(&ipa);
                }
            }
            Segment::Latin(word) => {
                for letter in word.chars() {
                    if !out.is_empty() && !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push_str(letter_name(letter));
                }
            }
            Segment::Punct(p) => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(p);
                out.push(' ');
            }
            Segment::Space => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
        }
    }
    out.trim_end().to_string()
}

/// English letter names in Kokoro's (misaki's) English symbols.
fn letter_name(c: char) -> &'static str {
    const NAMES: [&str; 26] = [
        "ˈA", "bˈi", "sˈi", "dˈi", "ˈi", "ˈɛf", "ʤˈi", "ˈAʧ", "ˈI", "ʤˈA", "kˈA", "ˈɛl", "ˈɛm", "ˈɛn", "ˈO", "pˈi", "kjˈu",
        "ˈɑɹ", "ˈɛs", "tˈi", "jˈu", "vˈi", "dˈʌbəlju", "ˈɛks", "wˈI", "zˈi",
    ];
    let i = (c.to_ascii_uppercase() as u8).wrapping_sub(b'A') as usize;
    NAMES.get(i).copied().unwrap_or("")
}

const INITIALS: [(&str, &str); 21] = [
    ("zh", "ꭧ"),
    ("ch", "ꭧʰ"),
    ("sh", "ʂ"),
    ("b", "p"),
    ("p", "pʰ"),
    ("m", "m"),
    ("f", "f"),
    ("d", "t"),
    ("t", "tʰ"),
    ("n", "n"),
    ("l", "l"),
    ("g", "k"),
    ("k", "kʰ"),
    ("h", "x"),
    ("j", "ʨ"),
    ("q", "ʨʰ"),
    ("x", "ɕ"),
    ("r", "ɻ"),
    ("z", "ʦ"),
    ("c", "ʦʰ"),
    ("s", "s"),
];

/// Finals as (onset glide, vowel nucleus, coda): the tone arrow goes after the nucleus.
fn final_parts(f: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match f {
        "a" => ("", "a", ""),
        "ai" => ("", "ai", ""),
        "an" => ("", "a", "n"),
        "ang" => ("", "a", "ŋ"),
        "ao" => ("", "au", ""),
        "e" => ("", "ɤ", ""),
        "ei" => ("", "ei", ""),
        "en" => ("", "ə", "n"),
        "eng" => ("", "ə", "ŋ"),
        "er" => ("", "ɚ", ""),
        "o" => ("w", "o", ""),
        "ou" => ("", "ou", ""),
        "ong" => ("", "ʊ", "ŋ"),
        "i" => ("", "i", ""),
        "ia" => ("j", "a", ""),
        "ian" => ("j", "ɛ", "n"),
        "iang" => ("j", "a", "ŋ"),
        "iao" => ("j", "au", ""),
        "ie" => ("j", "e", ""),
        "in" => ("", "i", "n"),
        "ing" => ("", "i", "ŋ"),
        "iong" => ("j", "ʊ", "ŋ"),
        "iou" => ("j", "ou", ""),
        "u" => ("", "u", ""),
        "ua" => ("w", "a", ""),
        "uai" => ("w", "ai", ""),
        "uan" => ("w", "a", "n"),
        "uang" => ("w", "a", "ŋ"),
        "uei" => ("w", "ei", ""),
        "uen" => ("w", "ə", "n"),
        "ueng" => ("w", "ə", "ŋ"),
        "uo" => ("w", "o", ""),
        "ü" => ("", "y", ""),
        "üe" => ("ɥ", "e", ""),
        "üan" => ("ɥ", "ɛ", "n"),
        "ün" => ("", "y", "n"),
        // Syllabic nasals of interjections (嗯 n, 呣 m).
        "n" => ("", "n", ""),
        "ng" => ("", "ŋ", ""),
        "m" => ("", "m", ""),
        "ê" => ("", "ɛ", ""),
        _ => return None,
    })
}

/// Splits toneless pinyin into its initial and its full final (y/w spellings undone:
/// "you" → ("", "iou"), "ju" → ("j", "ü"), "gui" → ("g", "uei")).
fn split_pinyin(py: &str) -> (&'static str, String) {
    let py = py.replace('v', "ü");
    if let Some(rest) = py.strip_prefix('y') {
        let f = match rest {
            "i" | "in" | "ing" => rest.to_string(),
            "u" => "ü".into(),
            "ue" => "üe".into(),
            "uan" => "üan".into(),
            "un" => "ün".into(),
            "ou" => "iou".into(),
            _ => format!("i{rest}"),
        };
        return ("", f);
    }
    if let Some(rest) = py.strip_prefix('w') {
        let f = if rest == "u" { "u".to_string() } else { format!("u{rest}") };
        return ("", f);
    }
    for (ini, _) in INITIALS {
        if let Some(rest) = py.strip_prefix(ini) {
            if rest.is_empty() {
                // "n", "m": a syllabic nasal, not an initial.
                return ("", py.to_string());
            }
            let f = match rest {
                "iu" => "iou".to_string(),
                "ui" => "uei".to_string(),
                "un" if matches!(ini, "j" | "q" | "x") => "ün".to_string(),
                "un" => "uen".to_string(),
                "u" if matches!(ini, "j" | "q" | "x") => "ü".to_string(),
                "ue" | "üe" => "üe".to_string(),
                "uan" if matches!(ini, "j" | "q" | "x") => "üan".to_string(),
                r => r.to_string(),
            };
            return (ini, f);
        }
    }
    ("", py)
}

/// One syllable in Kokoro's symbols ("zhong" tone 1 → "ꭧʊ→ŋ"); empty when unparseable.
fn syllable_ipa(s: &Syllable) -> String {
    let (ini, fin) = split_pinyin(&s.pinyin);
    let tone = match s.tone {
        1 => "→",
        2 => "↗",
        3 => "↓",
        4 => "↘",
        _ => "",
    };
    let initial = INITIALS.iter().find(|(p, _)| *p == ini).map_or("", |(_, ipa)| ipa);
    // The apical vowel of zi ci si zhi chi shi ri.
    if fin == "i" && matches!(ini, "z" | "c" | "s" | "zh" | "ch" | "sh" | "r") {
        return format!("{initial}ɨ{tone}");
    }
    match final_parts(&fin) {
        Some((glide, nucleus, coda)) => format!("{initial}{glide}{nucleus}{tone}{coda}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(text: &str) -> String {
        pinyin(text).join(" ")
    }

    #[test]
    fn third_tone_pairs_rise() {
        assert_eq!(py("你好"), "ni2 hao3");
        assert_eq!(py("我想"), "wo2 xiang3");
        assert_eq!(py("展览馆"), "zhan2 lan2 guan3");
    }

    #[test]
    fn yi_and_bu_change_with_the_next_tone() {
        assert_eq!(py("不要"), "bu2 yao4");
        assert_eq!(py("不能"), "bu4 neng2");
        assert_eq!(py("一个"), "yi2 ge4");
        assert_eq!(py("一天"), "yi4 tian1");
        assert_eq!(py("第一"), "di4 yi1");
        assert_eq!(py("十一"), "shi2 yi1");
        assert_eq!(py("请按一"), "qing3 an4 yi1");
    }

    #[test]
    fn neutral_tones_and_polyphones_in_context() {
        assert_eq!(py("谢谢"), "xie4 xie5");
        assert_eq!(py("我们的"), "wo3 men5 de5");
        assert_eq!(py("银行"), "yin2 hang2");
        assert_eq!(py("还有什么可以帮您"), "hai2 you3 shen2 me5 ke2 yi3 bang1 nin2");
        assert_eq!(py("为您转接人工客服"), "wei4 nin2 zhuan3 jie1 ren2 gong1 ke4 fu2");
    }

    #[test]
    fn numbers_are_read_after_normalizing() {
        assert_eq!(py("128元"), "yi4 bai3 er4 shi2 ba1 yuan2");
        assert_eq!(py("10086"), "yi2 wan4 ling2 ba1 shi2 liu4");
    }

    #[test]
    fn syllables_map_to_kokoro_symbols() {
        let ipa = |p: &str, t: u8| syllable_ipa(&Syllable { pinyin: p.into(), tone: t, hanzi: '中' });
        assert_eq!(ipa("zhong", 1), "ꭧʊ→ŋ");
        assert_eq!(ipa("shi", 4), "ʂɨ↘");
        assert_eq!(ipa("zi", 3), "ʦɨ↓");
        assert_eq!(ipa("xue", 2), "ɕɥe↗");
        assert_eq!(ipa("ju", 4), "ʨy↘");
        assert_eq!(ipa("you", 3), "jou↓");
        assert_eq!(ipa("gui", 4), "kwei↘");
        assert_eq!(ipa("lün", 4), "ly↘n");
        assert_eq!(ipa("qian", 2), "ʨʰjɛ↗n");
        assert_eq!(ipa("bo", 1), "pwo→");
        assert_eq!(ipa("er", 4), "ɚ↘");
        assert_eq!(ipa("de", 5), "tɤ");
        assert_eq!(ipa("wen", 4), "wə↘n");
        assert_eq!(ipa("yuan", 2), "ɥɛ↗n");
        assert_eq!(ipa("yong", 4), "jʊ↘ŋ");
        assert_eq!(ipa("ri", 4), "ɻɨ↘");
    }

    #[test]
    fn sentences_become_words_punctuation_and_letters() {
        assert_eq!(phonemes("你好，请稍候。"), "ni↗xau↓, ʨʰi↓ŋ ʂau→xou↘.");
        let g = phonemes("5G网络");
        assert!(g.starts_with("u↓ ʤˈi "), "{g}");
        assert_eq!(phonemes(""), "");
        assert_eq!(phonemes("🙂"), "");
    }
}
